import type { BlendOutcome, ContactWrite } from '../blend';
import { changePath } from '../ids';
import type { ContactWriteEntry } from './materializer';

/** Writes one group's contact writes: a lone write, or several applied together with one write of the group. */
export interface GroupCommitTarget {
  applyContactWrite(networkId: string, groupId: string, contactId: string, write: ContactWrite): Promise<BlendOutcome>;
  applyContactWriteBatch(networkId: string, groupId: string, writes: ContactWriteEntry[]): Promise<BlendOutcome[]>;
}

interface PendingWrite extends ContactWriteEntry {
  resolve(outcome: BlendOutcome): void;
  reject(error: unknown): void;
}

/**
 * Group commit of contact writes, per group: a write to a group with nothing in flight is
 * written at once, on its own; writes arriving while a group's write is in flight wait for it
 * and are then applied together, with one write of the group. Each caller is answered when the
 * write that includes its own is done (durable, for a store whose writes are), and a failed
 * write fails every caller in it.
 */
export class GroupCommitter {
  /** Per group with a write in flight, the writes that arrived since. */
  private readonly queues = new Map<string, PendingWrite[]>();

  constructor(private readonly target: GroupCommitTarget) {}

  submit(networkId: string, groupId: string, contactId: string, write: ContactWrite): Promise<BlendOutcome> {
    const key = changePath(networkId, groupId);
    return new Promise<BlendOutcome>((resolve, reject) => {
      const queue = this.queues.get(key);
      const pending: PendingWrite = { contactId, write, resolve, reject };
      if (queue) {
        queue.push(pending);
        return;
      }
      this.queues.set(key, []);
      void this.drain(key, networkId, groupId, [pending]);
    });
  }

  /** Commits `first`, then whatever arrived meanwhile, until the group's queue is empty. */
  private async drain(key: string, networkId: string, groupId: string, first: PendingWrite[]): Promise<void> {
    for (let batch = first; batch.length > 0; batch = this.queues.get(key)!.splice(0)) {
      try {
        const outcomes =
          batch.length === 1
            ? [await this.target.applyContactWrite(networkId, groupId, batch[0]!.contactId, batch[0]!.write)]
            : await this.target.applyContactWriteBatch(
                networkId,
                groupId,
                batch.map(({ contactId, write }) => ({ contactId, write })),
              );
        batch.forEach((pending, i) => pending.resolve(outcomes[i]!));
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    this.queues.delete(key);
  }
}
