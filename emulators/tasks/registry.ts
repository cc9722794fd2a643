import type { Logger } from '../../shared/log';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, serviceMessages } from './errors';
import { TargetClient } from './http-target';
import { type LocationName, type QueueName, parseLocationName, parseQueueName } from './names';
import { EmulatedQueue, type QueueStats } from './queue';
import { resolveQueueConfig } from './queue-config';
import type { QueueMessage } from './wire';

export interface RegistryOptions {
  /** How long a deleted queue's name cannot be reused (the service: 7 days). */
  queueNameReuseMs: number;
  /** How long a completed or deleted task's name cannot be reused (the service: about 1 hour). */
  taskNameReuseMs: number;
  logger: Logger;
}

/** Counters of every queue, deleted ones included. */
export type TotalStats = Omit<QueueStats, 'state' | 'droppedTasks'>;

export interface TasksEmulatorStats {
  /** Live queues by full name. */
  queues: Record<string, QueueStats>;
  totals: TotalStats;
}

const emptyTotals = (): TotalStats => ({
  tasks: 0,
  inFlight: 0,
  peakInFlight: 0,
  created: 0,
  dispatched: 0,
  succeeded: 0,
  failedAttempts: 0,
  retried: 0,
  dropped: 0,
  deleted: 0,
  purged: 0,
});

/** All queues of the emulator, by full name, plus the names deleted too recently to reuse. */
export class QueueRegistry {
  private readonly queues = new Map<string, EmulatedQueue>();
  private readonly deletedUntil = new Map<string, number>();
  private readonly retiredTotals = emptyTotals();
  private readonly targets = new TargetClient();

  constructor(private readonly options: RegistryOptions) {}

  create(parent: string | undefined, message: QueueMessage | undefined): EmulatedQueue {
    const location = parseLocationName(parent, 'parent');
    if (!message) throw invalidArgument('queue is required');
    const name = parseQueueName(message.name, 'queue.name');
    if (name.project !== location.project || name.location !== location.location) {
      throw invalidArgument(`queue.name "${name.path}" must be in the location given by parent (${location.path})`);
    }
    if (this.queues.has(name.path)) throw alreadyExists();
    return this.add(name, message);
  }

  /** UpdateQueue: updates the fields in the mask (all when empty), creating the queue if it does not exist. */
  update(message: QueueMessage | undefined, maskPaths: string[]): EmulatedQueue {
    if (!message) throw invalidArgument('queue is required');
    const name = parseQueueName(message.name, 'queue.name');
    const existing = this.queues.get(name.path);
    if (!existing) return this.add(name, message, maskPaths);
    existing.reconfigure(resolveQueueConfig(message, existing.toConfig(), maskPaths));
    return existing;
  }

  /** The queue named by `path`; NOT_FOUND when there is none. */
  get(path: string | undefined, field = 'name'): EmulatedQueue {
    const queue = this.find(path, field);
    if (!queue) throw notFound();
    return queue;
  }

  find(path: string | undefined, field = 'name'): EmulatedQueue | undefined {
    return this.queues.get(parseQueueName(path, field).path);
  }

  /** Queues of a location in lexicographical order, as the service lists them. */
  list(parent: string | undefined): EmulatedQueue[] {
    const location: LocationName = parseLocationName(parent, 'parent');
    const prefix = `${location.path}/queues/`;
    return [...this.queues.values()]
      .filter((q) => q.name.path.startsWith(prefix))
      .sort((a, b) => (a.name.path < b.name.path ? -1 : 1));
  }

  async delete(path: string | undefined): Promise<void> {
    const queue = this.get(path);
    this.queues.delete(queue.name.path);
    this.deletedUntil.set(queue.name.path, Date.now() + this.options.queueNameReuseMs);
    this.retire(queue.stats());
    await queue.close();
  }

  stats(): TasksEmulatorStats {
    const queues: Record<string, QueueStats> = {};
    const totals = { ...this.retiredTotals, tasks: 0, inFlight: 0 };
    for (const queue of this.queues.values()) {
      const stats = queue.stats();
      queues[queue.name.path] = stats;
      for (const key of Object.keys(totals) as Array<keyof TotalStats>) {
        totals[key] = key === 'peakInFlight' ? Math.max(totals[key], stats[key]) : totals[key] + stats[key];
      }
    }
    return { queues, totals };
  }

  async close(): Promise<void> {
    const queues = [...this.queues.values()];
    this.queues.clear();
    await Promise.all(queues.map((q) => q.close()));
    this.targets.close();
  }

  private add(name: QueueName, message: QueueMessage, maskPaths: string[] = []): EmulatedQueue {
    const until = this.deletedUntil.get(name.path);
    if (until !== undefined && until > Date.now()) throw failedPrecondition(serviceMessages.queueRecentlyDeleted);
    this.deletedUntil.delete(name.path);
    const config = resolveQueueConfig(message, undefined, maskPaths);
    const queue = new EmulatedQueue(name, config, {
      taskNameReuseMs: this.options.taskNameReuseMs,
      targets: this.targets,
      logger: this.options.logger,
    });
    this.queues.set(name.path, queue);
    return queue;
  }

  private retire(stats: QueueStats): void {
    for (const key of Object.keys(this.retiredTotals) as Array<keyof TotalStats>) {
      if (key === 'tasks' || key === 'inFlight') continue;
      this.retiredTotals[key] =
        key === 'peakInFlight' ? Math.max(this.retiredTotals[key], stats[key]) : this.retiredTotals[key] + stats[key];
    }
  }
}
