/**
 * The per-contact bookkeeping of applied writes stays bounded: a writer numbers its writes per
 * contact, so however it interleaves its contacts each contact's log folds into a high-water mark.
 */
import fc from 'fast-check';
import { APPLIED_LOG_HORIZON_MS, applyContactWrite, hasApplied, recordApplied } from '../../shared/blend';
import { DocumentStorage, growArray, MemoryStateStore, type AppliedLog, type StoredContact } from 'super-spine';
import { HybridLogicalClock } from '../../shared/hlc';
import { ContactSequences } from '../../shared/contact-sequences';

const MERGE = { blendMode: 'merge' as const };

describe('applied log', () => {
  it('numbers writes per contact: 1, 2, 3 for each contact, whatever comes in between', () => {
    const sequences = new ContactSequences();
    expect([
      sequences.next('n', 'g', 'a'),
      sequences.next('n', 'g', 'b'),
      sequences.next('n', 'g', 'a'),
      sequences.next('n', 'h', 'a'),
      sequences.next('n', 'g', 'a'),
    ]).toEqual([1, 1, 2, 1, 3]);
  });

  it('keeps one high-water mark and no loose numbers per contact after 2,000 writes alternating between two contacts', async () => {
    const store = new MemoryStateStore();
    const storage = new DocumentStorage(store, { writerId: 'writer' });
    for (let i = 0; i < 2000; i++) await storage.saveContactContent('n', 'g', i % 2 ? 'odd' : 'even', i);
    for (const id of ['odd', 'even']) {
      const contact = await store.getContact('n', 'g', id);
      expect(contact?.version?.applied?.writer).toEqual({ upTo: 1000, beyond: [], at: expect.any(Number) });
    }
  });

  it('stays folded for any interleaving of contacts, in single writes and in batches', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 7 }),
        async (choices, batchSize) => {
          const store = new MemoryStateStore();
          const storage = new DocumentStorage(store, { writerId: 'writer' });
          for (const c of choices) await storage.saveContactContent('n', 'single', `c${c}`, growArray([c]), MERGE);
          // The same interleaving as the mesh's batches carry it: per-contact numbers from one writer.
          const sequences = new ContactSequences();
          for (let i = 0; i < choices.length; i += batchSize) {
            const writes = choices.slice(i, i + batchSize).map((c) => ({
              contactId: `c${c}`,
              write: {
                content: growArray([c]),
                stamp: storage.nextOrigin().stamp,
                writerId: 'batcher',
                seq: sequences.next('n', 'packed', `c${c}`),
                ...MERGE,
              },
            }));
            await storage.applyContactWriteBatch('n', 'packed', writes);
          }
          const packed = (await store.getGroup('n', 'packed'))?.contacts;
          for (const c of new Set(choices)) {
            const count = choices.filter((x) => x === c).length;
            expect((await store.getContact('n', 'single', `c${c}`))?.version?.applied?.writer).toEqual({
              upTo: count,
              beyond: [],
              at: expect.any(Number),
            });
            expect(packed?.get(`c${c}`)?.version?.applied?.batcher).toEqual({
              upTo: count,
              beyond: [],
              at: expect.any(Number),
            });
            expect(
              ((await storage.loadContactContent('n', 'packed', `c${c}`)) as { items: number[] }).items,
            ).toHaveLength(count);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('forgets a writer idle for longer than Pub/Sub can redeliver, and still catches its duplicates until then', () => {
    const start = Date.UTC(2026, 11, 1);
    let log = recordApplied(undefined, 'old-session', 1, start);
    log = recordApplied(log, 'other', 1, start + APPLIED_LOG_HORIZON_MS);
    // Exactly at the horizon the old entry still counts: a redelivery may still come.
    expect(hasApplied(log, 'old-session', 1)).toBe(true);
    log = recordApplied(log, 'other', 2, start + APPLIED_LOG_HORIZON_MS + 1);
    expect(Object.keys(log)).toEqual(['other']);
    expect(log.other).toEqual({ upTo: 2, beyond: [], at: start + APPLIED_LOG_HORIZON_MS + 1 });
    // A log written before entries had `at` keeps them: nothing says they are idle.
    const legacy: AppliedLog = { legacy: { upTo: 3, beyond: [] } };
    expect(Object.keys(recordApplied(legacy, 'new', 1, start + 10 * APPLIED_LOG_HORIZON_MS))).toEqual([
      'legacy',
      'new',
    ]);
  });

  it('keeps at most the writers of the last horizon, however many sessions ever wrote the contact', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 * 24 * 60 * 60 * 1000 }), { minLength: 1, maxLength: 300 }),
        (gaps) => {
          let contact: StoredContact | null = null;
          let now = Date.UTC(2026, 0, 1);
          const lastWrite = new Map<string, number>();
          gaps.forEach((gap, i) => {
            now += gap;
            // Every write from a new session of a writer, as short-lived agents make them.
            const writerId = `agent.${i}`;
            const clock = new HybridLogicalClock(writerId, () => now);
            contact = applyContactWrite(
              contact,
              { contactId: 'c', groupId: 'g' },
              { content: i, stamp: clock.tick(), writerId, seq: 1 },
              now,
            ).contact;
            lastWrite.set(writerId, now);
            const recent = [...lastWrite].filter(([, at]) => now - at <= APPLIED_LOG_HORIZON_MS).map(([id]) => id);
            expect(Object.keys(contact.version!.applied).sort()).toEqual(recent.sort());
          });
        },
      ),
      { numRuns: 100 },
    );
  });
});
