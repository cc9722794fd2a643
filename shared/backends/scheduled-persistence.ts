import { NetworkNotFoundError } from '../errors';
import { createLogger, type Logger } from '../log';
import type { ContactWriteOptions, GroupState, NetworkState, NetworkStorage } from '../model';
import { DelegatingStorage } from './delegating';

export interface ScheduledPersistenceOptions {
  /** Every this many ms, `flush()` of the inner storage (the mesh: batched writes are persisted). */
  saveInterval?: number;
  /** Every this many ms, a snapshot of each network written through this storage since the last one. */
  snapshotInterval?: number;
  logger?: Logger;
}

/**
 * `persistence { saveInterval, snapshotInterval }` of a StorageConfig: timers around any storage.
 * The timers do not keep the process alive, and `close()` stops them before closing the storage.
 */
export class ScheduledPersistence extends DelegatingStorage {
  private readonly written = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly log: Logger;
  private running = Promise.resolve();
  /** Snapshots taken by the timer so far. */
  snapshotsTaken = 0;

  constructor(inner: NetworkStorage, options: ScheduledPersistenceOptions) {
    super(inner);
    this.log = options.logger ?? createLogger('scheduled-persistence');
    if (options.saveInterval) this.every(options.saveInterval, () => this.flush());
    if (options.snapshotInterval) this.every(options.snapshotInterval, () => this.snapshotWritten());
  }

  override async saveContactContent(
    networkId: string,
    groupId: string,
    contactId: string,
    content: unknown,
    options?: ContactWriteOptions,
  ): Promise<void> {
    await this.inner.saveContactContent(networkId, groupId, contactId, content, options);
    this.written.add(networkId);
  }

  override async saveGroupState(networkId: string, groupId: string, state: GroupState): Promise<void> {
    await this.inner.saveGroupState(networkId, groupId, state);
    this.written.add(networkId);
  }

  override async deleteGroup(networkId: string, groupId: string): Promise<void> {
    await this.inner.deleteGroup(networkId, groupId);
    this.written.add(networkId);
  }

  override async saveNetworkState(networkId: string, state: NetworkState): Promise<void> {
    await this.inner.saveNetworkState(networkId, state);
    this.written.add(networkId);
  }

  override async deleteNetwork(networkId: string): Promise<void> {
    await this.inner.deleteNetwork(networkId);
    this.written.delete(networkId);
  }

  /** Snapshots every network written since the last call; resolves with their ids. */
  async snapshotWritten(): Promise<string[]> {
    const networks = [...this.written];
    this.written.clear();
    const ids: string[] = [];
    for (const networkId of networks) {
      try {
        ids.push(await this.inner.saveSnapshot(networkId, 'scheduled'));
        this.snapshotsTaken += 1;
      } catch (error) {
        // Deleted since: nothing to keep. Anything else is tried again at the next interval.
        if (!(error instanceof NetworkNotFoundError)) {
          this.written.add(networkId);
          this.log.warn('scheduled snapshot failed', { networkId, error });
        }
      }
    }
    return ids;
  }

  override async close(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    await this.running;
    await this.inner.close();
  }

  private every(ms: number, work: () => Promise<unknown>): void {
    const timer = setInterval(() => {
      // One run at a time: a slow flush or snapshot is not stacked.
      this.running = this.running.then(work).then(
        () => undefined,
        (error: unknown) => this.log.warn('scheduled persistence failed', { error }),
      );
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }
}
