import fc from 'fast-check';
import { applyContactWrite, hasApplied, recordApplied, type ContactWrite } from '../../shared/blend';
import { canonicalize } from '../../shared/codec';
import {
  clone,
  deepEqual,
  growArray,
  growMap,
  growSet,
  shrinkArray,
  shrinkMap,
  shrinkSet,
  type AppliedLog,
  type BlendMode,
  type StoredContact as Contact,
} from 'super-spine';
import { compareStamps, formatStamp, HybridLogicalClock } from '../../shared/hlc';

const IDS = { contactId: 'c', groupId: 'g' };
/** A fixed clock for the applied log's `at`, so logs compare exactly. */
const NOW = Date.UTC(2026, 11, 1);

// Writer ids include names that are also Object.prototype members: the applied log is keyed by them.
const writerIds = fc.uniqueArray(fc.constantFrom('w1', 'w2', 'w3', 'agent-7', 'constructor', '__proto__', 'toString'), {
  minLength: 1,
  maxLength: 4,
});

interface WriterPlan {
  writerId: string;
  /** What the writer's wall clock reads at each of its writes: arbitrary, it may stand still or go back. */
  readings: number[];
}

const writerPlans: fc.Arbitrary<WriterPlan[]> = writerIds.chain((ids) =>
  fc.tuple(
    ...ids.map((writerId) =>
      fc
        .array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 5 })
        .map((readings) => ({ writerId, readings })),
    ),
  ),
);

/**
 * Stamps every planned write with its writer's own clock, and the content `contentFor` gives it.
 * Writers sometimes observe each other (`observeEvery`), as they would after reading state.
 */
function stampWrites(
  plans: WriterPlan[],
  contentFor: (writerId: string, seq: number) => unknown,
  blendMode: BlendMode,
  observe: boolean,
): ContactWrite[] {
  const clocks = plans.map((plan) => {
    let i = 0;
    return {
      plan,
      hlc: new HybridLogicalClock(plan.writerId, () => plan.readings[Math.min(i++, plan.readings.length - 1)]!),
    };
  });
  const writes: ContactWrite[] = [];
  const longest = Math.max(...plans.map((p) => p.readings.length));
  // Round robin, so writers interleave in real time.
  for (let round = 0; round < longest; round++) {
    for (const { plan, hlc } of clocks) {
      if (round >= plan.readings.length) continue;
      if (observe && writes.length > 0) hlc.observe(writes[writes.length - 1]!.stamp);
      const seq = round + 1;
      writes.push({
        content: contentFor(plan.writerId, seq),
        stamp: hlc.tick(),
        writerId: plan.writerId,
        seq,
        blendMode,
      });
    }
  }
  return writes;
}

/** A delivery: every write at least once, in any order, with copies of some writes somewhere after their first delivery. */
function deliveries(writes: ContactWrite[]): fc.Arbitrary<ContactWrite[]> {
  const permutation = fc.shuffledSubarray(writes, { minLength: writes.length, maxLength: writes.length });
  const duplicates = fc.array(fc.tuple(fc.nat(writes.length - 1), fc.nat()), { maxLength: 6 });
  return fc.tuple(permutation, duplicates).map(([order, dups]) => withDuplicates(order, dups));
}

/** Inserts a copy of `order[index]` at a position after its first occurrence. */
function withDuplicates(order: ContactWrite[], dups: [number, number][]): ContactWrite[] {
  const out = [...order];
  for (const [index, where] of dups) {
    const write = out[index % out.length]!;
    const first = out.indexOf(write);
    const position = first + 1 + (where % (out.length - first));
    out.splice(position, 0, { ...write });
  }
  return out;
}

/** Applies writes one by one, optionally through the codec as a store would, checking the log on the way. */
function applyAll(writes: ContactWrite[], throughCodec: boolean, initial: Contact | null = null): Contact {
  let contact: Contact | null = initial;
  const seen = new Set<string>();
  for (const write of writes) {
    const key = `${write.writerId}#${write.seq}`;
    expect(hasApplied(contact?.version?.applied, write.writerId, write.seq)).toBe(seen.has(key));
    const outcome = applyContactWrite(contact, IDS, write, NOW);
    expect(outcome.duplicate).toBe(seen.has(key));
    seen.add(key);
    expectCompactLog(outcome.contact.version!.applied, seen);
    contact = throughCodec ? clone(outcome.contact) : outcome.contact;
  }
  return contact!;
}

/** The log records exactly `seen`: upTo is the longest run from 1, beyond the rest, sorted. */
function expectCompactLog(log: AppliedLog, seen: Set<string>): void {
  const byWriter = new Map<string, number[]>();
  for (const key of seen) {
    const [writerId, seq] = key.split('#') as [string, string];
    byWriter.set(writerId, [...(byWriter.get(writerId) ?? []), Number(seq)]);
  }
  expect(Object.keys(log).sort()).toEqual([...byWriter.keys()].sort());
  for (const [writerId, seqs] of byWriter) {
    const set = new Set(seqs);
    let upTo = 0;
    while (set.has(upTo + 1)) upTo++;
    const entry = Object.getOwnPropertyDescriptor(log, writerId)?.value as AppliedLog[string];
    expect(entry).toEqual({
      upTo,
      beyond: [...set].filter((s) => s > upTo).sort((a, b) => a - b),
      at: expect.any(Number),
    });
  }
}

/** The values, without repeats by value (what a union of sets means here). */
function uniqueByValue(values: unknown[]): unknown[] {
  return [...new Map(values.map((v) => [canonicalize(v), v] as const)).values()];
}

function maxStampWrite(writes: ContactWrite[]): ContactWrite {
  return writes.reduce((best, w) => (compareStamps(w.stamp, best.stamp) > 0 ? w : best));
}

describe('blend properties', () => {
  it('(a) accept-last converges to the content of the newest stamp, whatever the order and duplicates', () => {
    const scenario = fc
      .tuple(writerPlans, fc.boolean())
      .map(([plans, observe]) =>
        stampWrites(
          plans,
          (writerId, seq) => ({ writerId, seq, payload: new Map([[seq, writerId]]) }),
          'accept-last',
          observe,
        ),
      )
      .chain((writes) => fc.tuple(fc.constant(writes), deliveries(writes), deliveries(writes), fc.boolean()));
    fc.assert(
      fc.property(scenario, ([writes, orderA, orderB, throughCodec]) => {
        const stamps = new Set(writes.map((w) => w.stamp));
        expect(stamps.size).toBe(writes.length);
        const newest = maxStampWrite(writes);
        const a = applyAll(orderA, throughCodec);
        const b = applyAll(orderB, !throughCodec);
        expect(a.content).toEqual(newest.content);
        expect(b.content).toEqual(newest.content);
        expect(a.version!.stamp).toBe(newest.stamp);
        expect(canonicalize(a)).toBe(canonicalize(b));
      }),
      { numRuns: 200 },
    );
  });

  const element = fc.oneof(
    fc.integer({ min: 0, max: 6 }),
    fc.constantFrom('x', 'y'),
    fc.constantFrom({ id: 1 }, { id: 2 }).map((o) => ({ ...o })),
  );

  type MergeCase = {
    name: string;
    content: fc.Arbitrary<(writerId: string, seq: number) => unknown>;
    expected?: (contents: unknown[]) => unknown;
  };
  const contentTable = <T>(arb: fc.Arbitrary<T>) =>
    fc
      .array(arb, { minLength: 30, maxLength: 30 })
      .map((table) => (writerId: string, seq: number) => clone(table[(writerId.length * 7 + seq) % table.length]));

  const mergeCases: MergeCase[] = [
    {
      name: 'GrowSet',
      content: contentTable(fc.array(element, { maxLength: 4 }).map((values) => growSet(values))),
      expected: (contents) =>
        growSet(uniqueByValue(contents.flatMap((c) => [...(c as ReturnType<typeof growSet>).values]))),
    },
    {
      name: 'GrowSet sent as an array',
      content: contentTable(fc.array(element, { maxLength: 4 }).map((values) => ({ _tag: 'GrowSet', values }))),
      expected: (contents) => growSet(uniqueByValue(contents.flatMap((c) => (c as { values: unknown[] }).values))),
    },
    {
      name: 'GrowMap with GrowSet values',
      content: contentTable(
        fc
          .array(fc.tuple(fc.constantFrom('k1', 'k2', 'k3'), fc.array(element, { maxLength: 3 })), { maxLength: 3 })
          .map((entries) => growMap(entries.map(([k, values]) => [k, growSet(values)] as [string, unknown]))),
      ),
    },
    {
      name: 'plain Set',
      content: contentTable(fc.array(element, { maxLength: 4 }).map((values) => new Set(values))),
    },
    {
      name: 'plain Map of plain Sets',
      content: contentTable(
        fc
          .array(fc.tuple(fc.constantFrom('k1', 'k2', { k: 3 }), fc.array(element, { maxLength: 3 })), { maxLength: 3 })
          .map((entries) => new Map(entries.map(([k, values]) => [k, new Set(values)] as [unknown, unknown]))),
      ),
    },
    {
      name: 'ShrinkSet sharing a common element',
      content: contentTable(fc.array(element, { maxLength: 4 }).map((values) => shrinkSet(['common', ...values]))),
    },
  ];

  it.each(mergeCases)('(b) $name merges converge whatever the order and duplicates', ({ content, expected }) => {
    const scenario = fc
      .tuple(writerPlans, content, fc.boolean())
      .map(([plans, contentFor, observe]) => stampWrites(plans, contentFor, 'merge', observe))
      .chain((writes) => fc.tuple(fc.constant(writes), deliveries(writes), deliveries(writes), fc.boolean()));
    fc.assert(
      fc.property(scenario, ([writes, orderA, orderB, throughCodec]) => {
        const a = applyAll(orderA, throughCodec);
        const b = applyAll(orderB, !throughCodec);
        expect(a.lastContradiction).toBeUndefined();
        expect(b.lastContradiction).toBeUndefined();
        expect(deepEqual(a.content, b.content)).toBe(true);
        expect(canonicalize(a.version)).toBe(canonicalize(b.version));
        if (expected) expect(canonicalize(a.content)).toBe(canonicalize(expected(writes.map((w) => w.content))));
      }),
      { numRuns: 100 },
    );
  });

  const anyModeCases: {
    name: string;
    mode: BlendMode;
    content: fc.Arbitrary<(writerId: string, seq: number) => unknown>;
  }[] = [
    { name: 'accept-last', mode: 'accept-last', content: contentTable(fc.oneof(fc.integer(), fc.string())) },
    {
      name: 'GrowArray',
      mode: 'merge',
      content: contentTable(fc.array(element, { maxLength: 3 }).map((items) => growArray(items))),
    },
    { name: 'plain array', mode: 'merge', content: contentTable(fc.array(element, { maxLength: 3 })) },
    {
      name: 'ShrinkArray',
      mode: 'merge',
      content: contentTable(fc.array(element, { maxLength: 3 }).map((items) => shrinkArray(['common', ...items]))),
    },
    {
      name: 'ShrinkMap',
      mode: 'merge',
      content: contentTable(
        fc
          .array(fc.constantFrom('a', 'b', 'c'), { maxLength: 3 })
          .map((keys) => shrinkMap([['common', 1], ...keys.map((k) => [k, 1] as [string, number])])),
      ),
    },
    { name: 'contradicting scalars', mode: 'merge', content: contentTable(fc.integer({ min: 0, max: 3 })) },
    {
      name: 'mixed tags',
      mode: 'merge',
      content: contentTable(
        fc.oneof(fc.constant(growSet([1])), fc.constant(shrinkSet([1])), fc.constant(growArray([1]))),
      ),
    },
  ];

  it.each(anyModeCases)('(c) applying a write again later equals applying it once: $name', ({ mode, content }) => {
    const scenario = fc
      .tuple(writerPlans, content)
      .map(([plans, contentFor]) => stampWrites(plans, contentFor, mode, false))
      .chain((writes) =>
        fc.tuple(
          fc.shuffledSubarray(writes, { minLength: writes.length, maxLength: writes.length }),
          fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 6 }),
        ),
      );
    fc.assert(
      fc.property(scenario, fc.boolean(), ([order, dups], throughCodec) => {
        const once = applyAll(order, throughCodec);
        const twice = applyAll(withDuplicates(order, dups), throughCodec);
        expect(twice).toEqual(once);
        expect(canonicalize(twice)).toBe(canonicalize(once));
      }),
      { numRuns: 100 },
    );
  });

  it('(c) a GrowArray redelivered right away does not grow twice', () => {
    const write: ContactWrite = {
      content: growArray(['x']),
      stamp: formatStamp({ wallTime: 1, logical: 0, writerId: 'w' }),
      writerId: 'w',
      seq: 1,
      blendMode: 'merge',
    };
    const first = applyContactWrite(null, IDS, write, NOW);
    const again = applyContactWrite(first.contact, IDS, { ...write }, NOW);
    expect(again.duplicate).toBe(true);
    expect(again.contentChanged).toBe(false);
    expect(again.contact.content).toEqual(growArray(['x']));
  });

  it('(d) the applied log stays compact: upTo advances and beyond empties once every seq is in', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }).chain((n) =>
          fc.tuple(
            fc.constant(n),
            fc.shuffledSubarray(
              [...Array(n).keys()].map((i) => i + 1),
              { minLength: n, maxLength: n },
            ),
          ),
        ),
        fc.constantFrom('w', '__proto__', 'constructor'),
        ([n, order], writerId) => {
          let log: AppliedLog | undefined;
          const seen = new Set<string>();
          for (const seq of order) {
            const before = log;
            const beforeText = JSON.stringify(before);
            log = recordApplied(log, writerId, seq, NOW);
            expect(JSON.stringify(before)).toBe(beforeText); // the old log is not mutated
            seen.add(`${writerId}#${seq}`);
            expectCompactLog(log, seen);
            expect(hasApplied(log, writerId, seq)).toBe(true);
          }
          expect(Object.getOwnPropertyDescriptor(log, writerId)?.value).toEqual({ upTo: n, beyond: [], at: NOW });
          expect(hasApplied(log, writerId, n + 1)).toBe(false);
          expect(hasApplied(log, 'someone-else', 1)).toBe(false);
          // Recording again changes nothing.
          expect(recordApplied(log, writerId, Math.ceil(n / 2), NOW)).toEqual(log);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('(d) keeps the log of every writer apart', () => {
    let log = recordApplied(undefined, 'a', 2, NOW);
    log = recordApplied(log, 'b', 1, NOW);
    log = recordApplied(log, 'toString', 1, NOW);
    expect(log).toEqual({
      a: { upTo: 0, beyond: [2], at: NOW },
      b: { upTo: 1, beyond: [], at: NOW },
      toString: { upTo: 1, beyond: [], at: NOW },
    });
    expect(hasApplied(log, 'a', 1)).toBe(false);
    expect(hasApplied(log, 'constructor', 1)).toBe(false);
    expect(hasApplied(log, 'hasOwnProperty', 1)).toBe(false);
    expect(hasApplied(log, '__proto__', 1)).toBe(false);
  });
});

describe('blend examples', () => {
  let tick = 0;
  const write = (content: unknown, extra: Partial<ContactWrite> = {}): ContactWrite => {
    tick += 1;
    return {
      content,
      stamp: formatStamp({ wallTime: 1_700_000_000_000 + tick, logical: 0, writerId: 'w' }),
      writerId: 'w',
      seq: tick,
      blendMode: 'merge',
      ...extra,
    };
  };
  const mergeContact = (content: unknown): Contact => ({ id: 'c', groupId: 'g', blendMode: 'merge', content });

  it('creates a missing contact with the write’s blend mode, accept-last by default', () => {
    expect(applyContactWrite(null, IDS, write(1, { blendMode: undefined })).contact).toMatchObject({
      id: 'c',
      groupId: 'g',
      blendMode: 'accept-last',
      content: 1,
    });
    expect(applyContactWrite(null, IDS, write(1)).contact.blendMode).toBe('merge');
    // An existing contact keeps its own mode.
    const existing = mergeContact(new Set([1]));
    const outcome = applyContactWrite(existing, IDS, write(new Set([2]), { blendMode: 'accept-last' }));
    expect(outcome.contact.blendMode).toBe('merge');
    expect(outcome.contact.content).toEqual(new Set([1, 2]));
  });

  it('accept-last keeps a newer content against an older late write', () => {
    const newer = write('new', {
      blendMode: 'accept-last',
      stamp: formatStamp({ wallTime: 5, logical: 0, writerId: 'b' }),
      writerId: 'b',
      seq: 1,
    });
    const older = write('old', {
      blendMode: 'accept-last',
      stamp: formatStamp({ wallTime: 5, logical: 0, writerId: 'a' }),
      writerId: 'a',
      seq: 1,
    });
    const first = applyContactWrite(null, IDS, newer);
    const late = applyContactWrite(first.contact, IDS, older);
    expect(late.contact.content).toBe('new');
    expect(late.contentChanged).toBe(false);
    expect(late.duplicate).toBe(false);
    expect(late.contact.version!.stamp).toBe(newer.stamp);
    expect(hasApplied(late.contact.version!.applied, 'a', 1)).toBe(true);
  });

  const contradictions: [string, unknown, unknown][] = [
    ['different scalars', 1, 2],
    ['different strings', 'a', 'b'],
    ['different objects', { a: 1 }, { a: 2 }],
    ['ShrinkSet to empty', shrinkSet([1, 2]), shrinkSet([3])],
    ['ShrinkArray to empty', shrinkArray([1]), shrinkArray([2])],
    ['ShrinkMap to empty', shrinkMap([['a', 1]]), shrinkMap([['b', 1]])],
    ['GrowSet into GrowMap', growMap([['a', 1]]), growSet([1])],
    ['GrowSet into ShrinkSet', shrinkSet([1]), growSet([1])],
    ['GrowSet into a plain Set', new Set([1]), growSet([1])],
    ['a Set into an array', [1], new Set([1])],
    ['a scalar into a Map', new Map([['a', 1]]), 5],
    ['different values under a Map key', new Map([['a', 1]]), new Map([['a', 2]])],
  ];

  it.each(contradictions)('%s: keeps the old content and records the contradiction', (_name, old, incoming) => {
    const current = mergeContact(old);
    const snapshot = canonicalize(current);
    const w = write(incoming);
    const outcome = applyContactWrite(current, IDS, w);
    expect(outcome.contradiction).toBe(true);
    expect(outcome.contentChanged).toBe(false);
    expect(outcome.contact.content).toBe(old);
    expect(outcome.contact.lastContradiction).toEqual({
      message: expect.any(String),
      values: [old, incoming],
      timestamp: 1_700_000_000_000 + tick,
    });
    expect(outcome.contact.lastContradiction!.message.length).toBeGreaterThan(0);
    // The write counts as applied, so a redelivery does not record it again.
    expect(hasApplied(outcome.contact.version!.applied, 'w', w.seq)).toBe(true);
    expect(canonicalize(current)).toBe(snapshot);
  });

  it('a later successful merge keeps the last contradiction on record', () => {
    const bad = applyContactWrite(mergeContact(1), IDS, write(2));
    const good = applyContactWrite(bad.contact, IDS, write(1));
    expect(good.contradiction).toBe(false);
    expect(good.contact.content).toBe(1);
    expect(good.contact.lastContradiction?.values).toEqual([1, 2]);
  });

  it('plain Set, Map and array merge as growing', () => {
    expect(applyContactWrite(mergeContact(new Set([1, 2])), IDS, write(new Set([2, 3]))).contact.content).toEqual(
      new Set([1, 2, 3]),
    );
    expect(
      applyContactWrite(mergeContact(new Map([['a', 1]])), IDS, write(new Map([['b', 2]]))).contact.content,
    ).toEqual(
      new Map([
        ['a', 1],
        ['b', 2],
      ]),
    );
    expect(
      applyContactWrite(mergeContact(new Map([['a', new Set([1])]])), IDS, write(new Map([['a', new Set([2])]])))
        .contact.content,
    ).toEqual(new Map([['a', new Set([1, 2])]]));
    expect(applyContactWrite(mergeContact([1, 2]), IDS, write([2, 3])).contact.content).toEqual([1, 2, 2, 3]);
  });

  it('equal values merge to themselves', () => {
    for (const value of [1, 'a', true, { a: [1, { b: 2 }] }, new Date(5), NaN]) {
      const outcome = applyContactWrite(mergeContact(value), IDS, write(clone(value)));
      expect(outcome.contradiction).toBe(false);
      expect(outcome.contact.content).toEqual(value);
      expect(outcome.contact.lastContradiction).toBeUndefined();
    }
    expect(applyContactWrite(mergeContact({ b: 1, a: 2 }), IDS, write({ a: 2, b: 1 })).contradiction).toBe(false);
  });

  it('null or undefined incoming keeps the current content', () => {
    for (const incoming of [null, undefined]) {
      const outcome = applyContactWrite(mergeContact(growSet([1])), IDS, write(incoming));
      expect(outcome.contradiction).toBe(false);
      expect(outcome.contact.content).toEqual(growSet([1]));
    }
  });

  it('a first write into an empty contact takes the content, normalized', () => {
    const outcome = applyContactWrite(mergeContact(undefined), IDS, write({ _tag: 'GrowSet', values: [1, 2] }));
    expect(outcome.contact.content).toEqual(growSet([1, 2]));
  });

  it('never mutates the contact or the write it is given', () => {
    const values = new Set([1]);
    const current = mergeContact(growSet(values));
    const incoming = write(growSet([2]));
    const before = [canonicalize(current), canonicalize(incoming)];
    const outcome = applyContactWrite(current, IDS, incoming);
    expect([canonicalize(current), canonicalize(incoming)]).toEqual(before);
    expect([...values]).toEqual([1]);
    expect(outcome.contact).not.toBe(current);
  });
});
