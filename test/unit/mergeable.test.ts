import { canonicalize } from '../../shared/codec';
import {
  clone,
  deepEqual,
  growArray,
  growMap,
  growSet,
  isMergeable,
  mergeValues,
  normalizeMergeable,
  shrinkArray,
  shrinkMap,
  shrinkSet,
  type Mergeable,
  type MergeResult,
} from 'super-spine';

function merged(current: unknown, incoming: unknown): unknown {
  const result = mergeValues(current, incoming);
  if (!result.ok) throw new Error(`expected a merge, got a contradiction: ${result.message}`);
  return result.value;
}

function contradiction(current: unknown, incoming: unknown): string {
  const result: MergeResult = mergeValues(current, incoming);
  if (result.ok) throw new Error(`expected a contradiction, got ${canonicalize(result.value)}`);
  expect(result.message.length).toBeGreaterThan(0);
  return result.message;
}

/** Merges and checks that neither input changed, not even deep inside. */
function mergedWithoutMutation(current: unknown, incoming: unknown): MergeResult {
  const before = [canonicalize(current), canonicalize(incoming)];
  const copies = [clone(current), clone(incoming)];
  const result = mergeValues(current, incoming);
  expect([canonicalize(current), canonicalize(incoming)]).toEqual(before);
  expect(current).toEqual(copies[0]);
  expect(incoming).toEqual(copies[1]);
  return result;
}

describe('constructors and isMergeable', () => {
  it('build the tagged shapes', () => {
    expect(growSet([1, 1, 2])).toEqual({ _tag: 'GrowSet', values: new Set([1, 2]) });
    expect(shrinkSet('ab')).toEqual({ _tag: 'ShrinkSet', values: new Set(['a', 'b']) });
    expect(growArray(new Set([1, 2]))).toEqual({ _tag: 'GrowArray', items: [1, 2] });
    expect(shrinkArray([3])).toEqual({ _tag: 'ShrinkArray', items: [3] });
    expect(growMap([['a', 1]])).toEqual({ _tag: 'GrowMap', entries: new Map([['a', 1]]) });
    expect(shrinkMap([['a', 1]])).toEqual({ _tag: 'ShrinkMap', entries: new Map([['a', 1]]) });
  });

  it('recognize only the six tags', () => {
    for (const m of [growSet([]), shrinkSet([]), growArray([]), shrinkArray([]), growMap([]), shrinkMap([])])
      expect(isMergeable(m)).toBe(true);
    for (const v of [
      null,
      undefined,
      1,
      'GrowSet',
      [],
      new Set(),
      { _tag: 'GrowSets' },
      { tag: 'GrowSet' },
      { _tag: undefined },
    ])
      expect(isMergeable(v)).toBe(false);
  });
});

describe('normalizeMergeable', () => {
  it('accepts arrays for sets', () => {
    expect(normalizeMergeable({ _tag: 'GrowSet', values: [1, 2, 2] } as unknown as Mergeable)).toEqual(growSet([1, 2]));
    expect(normalizeMergeable({ _tag: 'ShrinkSet', values: ['a'] } as unknown as Mergeable)).toEqual(shrinkSet(['a']));
  });

  it('treats members equal by value as one', () => {
    const normalized = normalizeMergeable({
      _tag: 'GrowSet',
      values: [{ id: 1 }, { id: 1 }, { id: 2 }],
    } as unknown as Mergeable) as ReturnType<typeof growSet>;
    expect(normalized.values.size).toBe(2);
  });

  it('accepts records and entry arrays for maps', () => {
    expect(normalizeMergeable({ _tag: 'GrowMap', entries: { a: 1, b: 2 } } as unknown as Mergeable)).toEqual(
      growMap([
        ['a', 1],
        ['b', 2],
      ]),
    );
    expect(normalizeMergeable({ _tag: 'ShrinkMap', entries: [[{ k: 1 }, 'v']] } as unknown as Mergeable)).toEqual(
      shrinkMap([[{ k: 1 }, 'v']]),
    );
  });

  it('accepts a Set for array items', () => {
    expect(normalizeMergeable({ _tag: 'GrowArray', items: new Set([1, 2]) } as unknown as Mergeable)).toEqual(
      growArray([1, 2]),
    );
  });

  it('reads missing or malformed collections as empty', () => {
    expect(normalizeMergeable({ _tag: 'GrowSet' } as unknown as Mergeable)).toEqual(growSet([]));
    expect(normalizeMergeable({ _tag: 'GrowMap', entries: 5 } as unknown as Mergeable)).toEqual(growMap([]));
    expect(normalizeMergeable({ _tag: 'ShrinkArray', items: 'abc' } as unknown as Mergeable)).toEqual(shrinkArray([]));
  });

  it('does not mutate its input', () => {
    const input = { _tag: 'GrowSet', values: [1, 1] } as unknown as Mergeable;
    normalizeMergeable(input);
    expect(input).toEqual({ _tag: 'GrowSet', values: [1, 1] });
  });
});

describe('mergeValues', () => {
  describe('GrowSet', () => {
    it('takes the union, by value', () => {
      const result = mergedWithoutMutation(growSet([1, { a: 1 }]), growSet([{ a: 1 }, 2]));
      expect(result.ok && canonicalize(result.value)).toBe(canonicalize(growSet([1, { a: 1 }, 2])));
      expect(result.ok && (result.value as ReturnType<typeof growSet>).values.size).toBe(3);
    });

    it('merges a set sent as an array with a Set', () => {
      expect(deepEqual(merged(growSet([1]), { _tag: 'GrowSet', values: [2, 1] }), growSet([1, 2]))).toBe(true);
      expect(deepEqual(merged({ _tag: 'GrowSet', values: [3] }, growSet([1])), growSet([3, 1]))).toBe(true);
    });
  });

  describe('ShrinkSet', () => {
    it('takes the intersection', () => {
      const result = mergedWithoutMutation(shrinkSet([1, 2, 3, { x: 1 }]), shrinkSet([3, 2, 9, { x: 1 }]));
      expect(result.ok && canonicalize(result.value)).toBe(canonicalize(shrinkSet([2, 3, { x: 1 }])));
    });

    it('calls an empty intersection a contradiction', () => {
      expect(contradiction(shrinkSet([1]), shrinkSet([2]))).toMatch(/ShrinkSet/);
      expect(contradiction(shrinkSet([1]), shrinkSet([]))).toMatch(/empty/);
    });
  });

  describe('GrowArray', () => {
    it('appends, keeping repeats', () => {
      const result = mergedWithoutMutation(growArray([1, 2]), growArray([2, 3]));
      expect(result.ok && result.value).toEqual(growArray([1, 2, 2, 3]));
    });
  });

  describe('ShrinkArray', () => {
    it('keeps the items both sides have, in the current order', () => {
      const result = mergedWithoutMutation(shrinkArray([3, 1, 2, { a: 1 }]), shrinkArray([{ a: 1 }, 2, 3]));
      expect(result.ok && result.value).toEqual(shrinkArray([3, 2, { a: 1 }]));
    });

    it('calls an empty intersection a contradiction', () => {
      expect(contradiction(shrinkArray([1]), shrinkArray([2]))).toMatch(/ShrinkArray/);
    });
  });

  describe('GrowMap', () => {
    it('takes the union of keys and merges values under shared keys', () => {
      const current = growMap<unknown, unknown>([
        ['a', growSet([1])],
        [{ k: 1 }, 'same'],
      ]);
      const incoming = growMap<unknown, unknown>([
        ['a', growSet([2])],
        [{ k: 1 }, 'same'],
        ['b', 3],
      ]);
      const result = mergedWithoutMutation(current, incoming);
      expect(result.ok).toBe(true);
      const entries = (result as { value: ReturnType<typeof growMap> }).value.entries;
      expect(entries.size).toBe(3);
      expect(deepEqual(entries.get('a'), growSet([1, 2]))).toBe(true);
      expect(entries.get('b')).toBe(3);
    });

    it('accepts a record for entries', () => {
      expect(
        deepEqual(
          merged(growMap([['a', 1]]), { _tag: 'GrowMap', entries: { b: 2 } }),
          growMap([
            ['a', 1],
            ['b', 2],
          ]),
        ),
      ).toBe(true);
    });

    it('calls different values under one key a contradiction, naming the key', () => {
      expect(contradiction(growMap([['a', 1]]), growMap([['a', 2]]))).toContain('"a"');
    });

    it('treats keys equal by value as one key', () => {
      const result = merged(
        growMap([[{ k: 1 }, growSet([1])]]),
        growMap([
          [{ k: 1 }, growSet([2])],
          [{ k: 1 }, growSet([3])],
        ]),
      ) as ReturnType<typeof growMap>;
      expect(result.entries.size).toBe(1);
      expect(deepEqual([...result.entries.values()][0], growSet([1, 2, 3]))).toBe(true);
    });
  });

  describe('ShrinkMap', () => {
    it('keeps the shared keys only, with merged values', () => {
      const result = mergedWithoutMutation(
        shrinkMap<string, unknown>([
          ['a', shrinkSet([1, 2])],
          ['b', 1],
        ]),
        shrinkMap<string, unknown>([
          ['a', shrinkSet([2, 3])],
          ['c', 1],
        ]),
      );
      expect(result.ok && canonicalize(result.value)).toBe(canonicalize(shrinkMap([['a', shrinkSet([2])]])));
    });

    it('calls no shared keys a contradiction', () => {
      expect(contradiction(shrinkMap([['a', 1]]), shrinkMap([['b', 1]]))).toMatch(/ShrinkMap/);
    });

    it('passes a contradiction under a key up', () => {
      expect(contradiction(shrinkMap([['a', shrinkSet([1])]]), shrinkMap([['a', shrinkSet([2])]]))).toMatch(
        /"a".*ShrinkSet/,
      );
    });
  });

  describe('plain collections merge as growing', () => {
    it('Set: union by value', () => {
      const result = mergedWithoutMutation(new Set([1, { a: 1 }]), new Set([{ a: 1 }, 2]));
      expect(result.ok && (result.value as Set<unknown>).size).toBe(3);
    });

    it('Map: union of keys, values merged', () => {
      const result = mergedWithoutMutation(
        new Map<string, unknown>([['a', new Set([1])]]),
        new Map<string, unknown>([
          ['a', new Set([2])],
          ['b', [1]],
        ]),
      );
      expect(result.ok && result.value).toEqual(
        new Map<string, unknown>([
          ['a', new Set([1, 2])],
          ['b', [1]],
        ]),
      );
    });

    it('array: appended', () => {
      const result = mergedWithoutMutation([1, 2], [2]);
      expect(result.ok && result.value).toEqual([1, 2, 2]);
    });
  });

  describe('scalars and other values', () => {
    it('equal values merge to themselves', () => {
      for (const value of [1, 'x', false, { a: { b: [1] } }, new Date(0), NaN]) {
        const current = clone(value);
        expect(merged(current, clone(value))).toBe(current);
      }
      expect(merged({ a: 1, b: 2 }, { b: 2, a: 1 })).toEqual({ a: 1, b: 2 });
    });

    it('different scalars are a contradiction that names both', () => {
      const message = contradiction(1, 2);
      expect(message).toContain('1');
      expect(message).toContain('2');
      contradiction('a', 'b');
      contradiction(true, false);
      contradiction(1, '1');
      contradiction(0, -0);
      contradiction({ a: 1 }, { a: 2 });
      contradiction(new Date(1), new Date(2));
    });

    it('mixed kinds are a contradiction', () => {
      contradiction(growSet([1]), shrinkSet([1]));
      contradiction(growSet([1]), new Set([1]));
      contradiction(new Set([1]), growSet([1]));
      contradiction(growArray([1]), [1]);
      contradiction(new Map(), new Set());
      contradiction([1], new Set([1]));
      contradiction(1, [1]);
      contradiction(growMap([]), growSet([]));
    });

    it('null or undefined incoming keeps the current value', () => {
      const current = growSet([1]);
      expect(merged(current, null)).toBe(current);
      expect(merged(current, undefined)).toBe(current);
      expect(merged(5, null)).toBe(5);
    });

    it('an empty current takes the incoming value, normalized', () => {
      expect(merged(undefined, 7)).toBe(7);
      expect(merged(null, [1])).toEqual([1]);
      expect(merged(undefined, { _tag: 'GrowSet', values: [1, 1] })).toEqual(growSet([1]));
      expect(merged(null, { _tag: 'GrowMap', entries: { a: 1 } })).toEqual(growMap([['a', 1]]));
    });
  });

  it('never mutates its inputs, even in a contradiction', () => {
    const pairs: [unknown, unknown][] = [
      [growSet([1]), growSet([2])],
      [shrinkSet([1, 2]), shrinkSet([2])],
      [growArray([1]), growArray([2])],
      [shrinkArray([1, 2]), shrinkArray([1])],
      [growMap([['a', growSet([1])]]), growMap([['a', growSet([2])]])],
      [shrinkMap([['a', 1]]), shrinkMap([['b', 1]])],
      [new Set([1]), new Set([2])],
      [new Map([['a', [1]]]), new Map([['a', [2]]])],
      [[1], [2]],
      [
        { _tag: 'GrowSet', values: [1] },
        { _tag: 'GrowSet', values: [2] },
      ],
      [
        { _tag: 'GrowMap', entries: { a: 1 } },
        { _tag: 'GrowMap', entries: [['b', 2]] },
      ],
      [1, 2],
    ];
    for (const [current, incoming] of pairs) mergedWithoutMutation(current, incoming);
  });

  it('does not share its result with the inputs, so mutating the result leaves them alone', () => {
    const current = growSet([1]);
    const incoming = growSet([2]);
    const result = merged(current, incoming) as ReturnType<typeof growSet>;
    result.values.add(99);
    expect([...current.values]).toEqual([1]);
    expect([...incoming.values]).toEqual([2]);
  });
});
