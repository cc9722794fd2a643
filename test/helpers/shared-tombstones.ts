import { HybridLogicalClock } from '../../shared/hlc';
import { type DocumentStorage } from 'super-spine';

export interface StoragePair {
  first: DocumentStorage;
  second: DocumentStorage;
  close(): Promise<void>;
}

/**
 * Two instances over one store deleting groups of one network at once: every delete must leave
 * its tombstone, so an older write that arrives late brings no deleted group back. Registered
 * for each backend with the way it shares a store between instances.
 */
export function describeSharedTombstones(backend: string, pair: () => Promise<StoragePair>): void {
  it(`keeps every tombstone when two instances delete groups of one network at once (${backend})`, async () => {
    const { first, second, close } = await pair();
    try {
      const network = `tombstones-${Date.now()}`;
      const groups = Array.from({ length: 16 }, (_, i) => `g${i}`);
      for (const group of groups) await first.saveContactContent(network, group, 'c', group);
      // The instances share a store, not a clock: a delete stamped in the same millisecond as a write
      // of the other instance can rightly order before it, and the write then stays. The deletes
      // here are meant to come after every write, so they start in a later millisecond.
      const wroteAt = Date.now();
      while (Date.now() <= wroteAt + 1) await new Promise((resolve) => setImmediate(resolve));
      // Stamped before the deletes, delivered after them.
      const late = new HybridLogicalClock('late-writer', () => Date.now() - 60_000);
      const lateWrites = groups.map((group, i) => ({
        group,
        write: { content: 'too late', stamp: late.tick(), writerId: 'late-writer', seq: i + 1 },
      }));
      await Promise.all(groups.map((group, i) => (i % 2 ? second : first).deleteGroup(network, group)));
      for (const { group, write } of lateWrites) {
        const [outcome] = await second.applyContactWriteBatch(network, group, [{ contactId: 'c', write }]);
        if (!outcome!.superseded) throw new Error(`a late write brought back ${group}: its tombstone was lost`);
      }
      for (const group of groups) expect(await first.loadGroupState(network, group)).toBeNull();
    } finally {
      await close();
    }
  });
}
