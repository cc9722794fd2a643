/**
 * The per-contact bookkeeping of applied writes stays bounded: a writer numbers its writes per
 * contact, so however it interleaves its contacts each contact's log folds into a high-water mark.
 */
import fc from 'fast-check';
import { DocumentStorage, growArray, MemoryStateStore } from 'super-spine';
import { ContactSequences } from '../../shared/contact-sequences';

const MERGE = { blendMode: 'merge' as const };

describe('applied log', () => {
  it('numbers writes per contact: 1, 2, 3 for each contact, whatever comes in between', () => {
    const sequences = new ContactSequences();
    expect([sequences.next('n', 'g', 'a'), sequences.next('n', 'g', 'b'), sequences.next('n', 'g', 'a'), sequences.next('n', 'h', 'a'), sequences.next('n', 'g', 'a')]).toEqual([1, 1, 2, 1, 3]);
  });

  it('keeps one high-water mark and no loose numbers per contact after 2,000 writes alternating between two contacts', async () => {
    const store = new MemoryStateStore();
    const storage = new DocumentStorage(store, { writerId: 'writer' });
    for (let i = 0; i < 2000; i++) await storage.saveContactContent('n', 'g', i % 2 ? 'odd' : 'even', i);
    for (const id of ['odd', 'even']) {
      const contact = await store.getContact('n', 'g', id);
      expect(contact?.version?.applied?.writer).toEqual({ upTo: 1000, beyond: [] });
    }
  });

  it('stays folded for any interleaving of contacts, in single writes and in batches', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 7 }), async (choices, batchSize) => {
        const store = new MemoryStateStore();
        const storage = new DocumentStorage(store, { writerId: 'writer' });
        for (const c of choices) await storage.saveContactContent('n', 'single', `c${c}`, growArray([c]), MERGE);
        // The same interleaving as the mesh's batches carry it: per-contact numbers from one writer.
        const sequences = new ContactSequences();
        for (let i = 0; i < choices.length; i += batchSize) {
          const writes = choices.slice(i, i + batchSize).map((c) => ({
            contactId: `c${c}`,
            write: { content: growArray([c]), stamp: storage.nextOrigin().stamp, writerId: 'batcher', seq: sequences.next('n', 'packed', `c${c}`), ...MERGE },
          }));
          await storage.applyContactWriteBatch('n', 'packed', writes);
        }
        const packed = (await store.getGroup('n', 'packed'))?.contacts;
        for (const c of new Set(choices)) {
          const count = choices.filter((x) => x === c).length;
          expect((await store.getContact('n', 'single', `c${c}`))?.version?.applied?.writer).toEqual({ upTo: count, beyond: [] });
          expect(packed?.get(`c${c}`)?.version?.applied?.batcher).toEqual({ upTo: count, beyond: [] });
          expect(((await storage.loadContactContent('n', 'packed', `c${c}`)) as { items: number[] }).items).toHaveLength(count);
        }
      }),
      { numRuns: 60 },
    );
  });
});
