import { createHash } from 'node:crypto';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { changePath } from '../shared/ids';
import { status as GrpcStatus } from '@grpc/grpc-js';

export interface BatchSchedulerOptions {
  tasks: CloudTasksClient;
  /** `projects/…/locations/…/queues/…` */
  queuePath: string;
  /** Base URL of the persist function. */
  persistUrl: string;
  windowMs: number;
  /** Service account whose OIDC token Cloud Tasks presents to the persist function. */
  serviceAccountEmail?: string;
}

/**
 * Books the flush of a group's window as a Cloud Task named for the group and the window: the
 * first write of a window creates it, later ones find the name taken (ALREADY_EXISTS), so each
 * window is flushed once, after it closes.
 */
export class BatchScheduler {
  /** Windows this instance already booked, so most writes cost no request at all. */
  private readonly booked = new Map<string, number>();

  constructor(private readonly options: BatchSchedulerOptions) {}

  windowOf(time: number): number {
    return Math.floor(time / this.options.windowMs);
  }

  taskName(networkId: string, groupId: string, window: number): string {
    const digest = createHash('sha256').update(changePath(networkId, groupId)).digest('hex').slice(0, 40);
    return `${this.options.queuePath}/tasks/batch-${digest}-${window}`;
  }

  /** Makes sure window `window` has its flush booked for the group; true when this call booked it. */
  async book(networkId: string, groupId: string, window: number): Promise<boolean> {
    const name = this.taskName(networkId, groupId, window);
    if (this.booked.has(name)) return false;
    // A little after the window closes, so writes still on their way through Pub/Sub are pending by then.
    const graceMs = Math.min(5_000, Math.max(500, this.options.windowMs / 2));
    const flushAt = (window + 1) * this.options.windowMs + graceMs;
    let created = true;
    try {
      await this.options.tasks.createTask({
        parent: this.options.queuePath,
        task: {
          name,
          scheduleTime: { seconds: Math.floor(flushAt / 1000), nanos: (flushAt % 1000) * 1e6 },
          httpRequest: this.request({ networkId, groupId, window }),
        },
      });
    } catch (error) {
      if ((error as { code?: number }).code !== GrpcStatus.ALREADY_EXISTS) throw error;
      created = false;
    }
    this.remember(name, window);
    return created;
  }

  /** A flush as soon as possible, for `interval` and `manual` networks whose writer asked for one. */
  async flushNow(networkId: string): Promise<void> {
    await this.options.tasks.createTask({
      parent: this.options.queuePath,
      task: { httpRequest: this.request({ networkId, all: true }) },
    });
  }

  /**
   * Books the periodic sweep as a task in the same queue, so it never runs beside a window's
   * flush (one flush at a time). Named for its slot, so a slot fired twice sweeps once.
   */
  async sweep(slot?: Date): Promise<boolean> {
    const name = slot ? `${this.options.queuePath}/tasks/sweep-${Math.floor(slot.getTime() / 1000)}` : undefined;
    try {
      await this.options.tasks.createTask({
        parent: this.options.queuePath,
        task: { ...(name ? { name } : {}), httpRequest: this.request({ all: true }) },
      });
      return true;
    } catch (error) {
      if ((error as { code?: number }).code !== GrpcStatus.ALREADY_EXISTS || !name) throw error;
      return false;
    }
  }

  private request(body: Record<string, unknown>) {
    return {
      url: this.options.persistUrl,
      httpMethod: 'POST' as const,
      headers: { 'Content-Type': 'application/json' },
      body: Buffer.from(JSON.stringify(body)),
      ...(this.options.serviceAccountEmail
        ? { oidcToken: { serviceAccountEmail: this.options.serviceAccountEmail, audience: this.options.persistUrl } }
        : {}),
    };
  }

  private remember(name: string, window: number): void {
    this.booked.set(name, window);
    // Forget windows that have closed, so the map stays small.
    if (this.booked.size > 10_000) {
      for (const [key, booked] of this.booked) if (booked < window) this.booked.delete(key);
    }
  }
}
