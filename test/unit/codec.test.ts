import { expect } from '@jest/globals';
import fc from 'fast-check';
import { canonicalize, copyValue, encodeToBuffer, encodeWithCopy } from '../../shared/codec';
import {
  clone,
  ContentTooLargeError,
  CorruptDataError,
  decode,
  deepEqual,
  encode,
  growArray,
  growMap,
  growSet,
  shrinkArray,
  shrinkMap,
  shrinkSet,
  UnserializableContentError,
} from 'super-spine';
import { jsonTextDepth, MAX_ENCODE_DEPTH, MAX_TEXT_DEPTH } from '../../shared/codec';

// Jest compares Dates with ==, so two invalid Dates would differ; the codec keeps them equal.
expect.addEqualityTesters([
  (a: unknown, b: unknown) =>
    a instanceof Date && b instanceof Date ? Object.is(a.getTime(), b.getTime()) : undefined,
]);

const roundTrip = <T>(value: T): T => decode<T>(encode(value));

/** An own enumerable property, even `__proto__` (assignment would set the prototype). */
function withOwn(target: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  return target;
}

/**
 * Stricter than toEqual: the same classes (Map, Set, Date, plain object, array) at every place,
 * no holes where the original had none, the same own keys (`__proto__` included), and numbers
 * compared with Object.is. Returns the first difference, or undefined.
 */
function structuralDifference(actual: unknown, expected: unknown, at = '$'): string | undefined {
  if (expected === null || typeof expected !== 'object') {
    return Object.is(actual, expected) ? undefined : `${at}: ${String(actual)} is not ${String(expected)}`;
  }
  if (actual === null || typeof actual !== 'object') return `${at}: expected an object, got ${String(actual)}`;
  if (expected instanceof Date) {
    if (!(actual instanceof Date)) return `${at}: not a Date`;
    return Object.is(actual.getTime(), expected.getTime()) ? undefined : `${at}: different time`;
  }
  if (expected instanceof Map) {
    if (!(actual instanceof Map)) return `${at}: not a Map`;
    if (actual.size !== expected.size) return `${at}: Map size ${actual.size} != ${expected.size}`;
    const got = [...actual];
    let i = 0;
    for (const [k, v] of expected) {
      const entry = got[i];
      if (!entry) return `${at}: missing entry ${i}`;
      const difference =
        structuralDifference(entry[0], k, `${at}.<key ${i}>`) ??
        structuralDifference(entry[1], v, `${at}.<value ${i}>`);
      if (difference) return difference;
      i++;
    }
    return undefined;
  }
  if (expected instanceof Set) {
    if (!(actual instanceof Set)) return `${at}: not a Set`;
    if (actual.size !== expected.size) return `${at}: Set size ${actual.size} != ${expected.size}`;
    const got = [...actual];
    let i = 0;
    for (const v of expected) {
      const difference = structuralDifference(got[i], v, `${at}.<value ${i}>`);
      if (difference) return difference;
      i++;
    }
    return undefined;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${at}: not an array`;
    if (actual.length !== expected.length) return `${at}: length ${actual.length} != ${expected.length}`;
    for (let i = 0; i < expected.length; i++) {
      if (i in expected !== i in actual) return `${at}[${i}]: hole mismatch`;
      const difference = structuralDifference(actual[i], expected[i], `${at}[${i}]`);
      if (difference) return difference;
    }
    return undefined;
  }
  if (Object.getPrototypeOf(actual) !== Object.prototype) return `${at}: not a plain object`;
  const expectedKeys = Object.keys(expected);
  const actualKeys = Object.keys(actual);
  if (actualKeys.join('\u0000') !== expectedKeys.join('\u0000'))
    return `${at}: keys ${JSON.stringify(actualKeys)} != ${JSON.stringify(expectedKeys)}`;
  for (const key of expectedKeys) {
    const difference = structuralDifference(
      (actual as Record<string, unknown>)[key],
      (expected as Record<string, unknown>)[key],
      `${at}.${key}`,
    );
    if (difference) return difference;
  }
  return undefined;
}

function expectExactRoundTrip(value: unknown): void {
  const back = roundTrip(value);
  expect(back).toEqual(value);
  expect(structuralDifference(back, value)).toBeUndefined();
}

function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to throw');
}

describe('codec round trips', () => {
  it('round-trips Maps, including non-string keys', () => {
    const objectKey = { id: 1 };
    const value = new Map<unknown, unknown>([
      ['a', 1],
      [2, 'two'],
      [true, null],
      [NaN, 'nan'],
      [objectKey, ['x']],
      [new Date(5), new Set([1])],
      [new Map([[1, 2]]), 'map key'],
      [undefined, 'undefined key'],
    ]);
    const back = roundTrip(value);
    expect(back).toBeInstanceOf(Map);
    expect([...back.keys()].map((k) => typeof k)).toEqual([
      'string',
      'number',
      'boolean',
      'number',
      'object',
      'object',
      'object',
      'undefined',
    ]);
    expect(back.get(2)).toBe('two');
    expect(back.get(NaN)).toBe('nan');
    expect(back.get(undefined)).toBe('undefined key');
    expectExactRoundTrip(value);
  });

  it('round-trips Sets, Dates and invalid Dates', () => {
    expectExactRoundTrip(new Set([1, '1', null, undefined, { a: 1 }, new Set([2])]));
    const date = roundTrip(new Date('2024-02-29T12:34:56.789Z'));
    expect(date).toBeInstanceOf(Date);
    expect(date.toISOString()).toBe('2024-02-29T12:34:56.789Z');
    const invalid = roundTrip(new Date(NaN));
    expect(invalid).toBeInstanceOf(Date);
    expect(Number.isNaN(invalid.getTime())).toBe(true);
    expectExactRoundTrip([new Date(0), new Date(-1), new Date(8.64e15), new Date(-8.64e15)]);
  });

  it('keeps undefined in arrays and as object properties', () => {
    const array = roundTrip([undefined, 1, undefined]);
    expect(array).toHaveLength(3);
    expect(0 in array).toBe(true);
    expect(2 in array).toBe(true);
    expect(array).toStrictEqual([undefined, 1, undefined]);

    const object = roundTrip<Record<string, unknown>>({ a: undefined, b: 1 });
    expect(Object.keys(object)).toEqual(['a', 'b']);
    expect(object).toStrictEqual({ a: undefined, b: 1 });

    expect(roundTrip(undefined)).toBeUndefined();
    expect(roundTrip(new Map([['k', undefined]])).has('k')).toBe(true);
  });

  it('keeps NaN, ±Infinity and -0', () => {
    const back = roundTrip([NaN, Infinity, -Infinity, -0, 0, Number.MAX_VALUE, Number.MIN_VALUE]);
    expect(Number.isNaN(back[0])).toBe(true);
    expect(back[1]).toBe(Infinity);
    expect(back[2]).toBe(-Infinity);
    expect(Object.is(back[3], -0)).toBe(true);
    expect(Object.is(back[4], 0)).toBe(true);
    expect(back.slice(5)).toEqual([Number.MAX_VALUE, Number.MIN_VALUE]);
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
  });

  it('round-trips nested structures', () => {
    expectExactRoundTrip({
      groups: new Map([
        [
          'g1',
          {
            contacts: new Map([
              ['c1', { content: new Set([new Date(1), [1, { deep: new Map([[[1, 2], undefined]]) }]]) }],
            ]),
          },
        ],
      ]),
      list: [[[[[]]]], {}, new Map(), new Set()],
    });
  });

  it('keeps objects that themselves have a $type key, at any depth', () => {
    const tricky = [
      { $type: 'Map', entries: [[1, 2]] },
      { $type: 'undefined' },
      { $type: 'object', entries: [] },
      { $type: 'number', value: 'NaN' },
      { $type: 'nonsense' },
      { $type: undefined },
      { $type: { $type: 'Set', values: [] } },
      { nested: { $type: 'Date', iso: null } },
    ];
    const back = roundTrip(tricky);
    expect(back[0]).not.toBeInstanceOf(Map);
    expect(back[1]).toStrictEqual({ $type: 'undefined' });
    expect(typeof back[3]).toBe('object');
    expectExactRoundTrip(tricky);
  });

  it('keeps __proto__ keys as own data, without touching prototypes', () => {
    const hostile = withOwn({}, '__proto__', { polluted: true });
    const escaped = withOwn({ $type: 'x' }, '__proto__', { polluted: true });
    const back = roundTrip<Record<string, unknown>[]>([hostile, escaped]);
    for (const object of back) {
      expect(Object.getPrototypeOf(object)).toBe(Object.prototype);
      expect(Object.keys(object)).toContain('__proto__');
      expect((object as { polluted?: unknown }).polluted).toBeUndefined();
    }
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    // Straight from JSON text too, as another writer might have produced it.
    const parsed = decode<Record<string, unknown>>('{"__proto__":{"polluted":1}}');
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(Object.keys(parsed)).toEqual(['__proto__']);
    expectExactRoundTrip([hostile, escaped]);
  });

  it('round-trips the mergeable collections', () => {
    const values = [
      growSet([1, 'a', { x: 1 }]),
      shrinkSet(['p', 'q']),
      growArray([1, 1, undefined]),
      shrinkArray([new Date(3)]),
      growMap([[{ k: 1 }, growSet([1])]]),
      shrinkMap([['a', 1]]),
    ];
    const back = roundTrip(values);
    expect((back[0] as ReturnType<typeof growSet>).values).toBeInstanceOf(Set);
    expect((back[4] as ReturnType<typeof growMap>).entries).toBeInstanceOf(Map);
    expectExactRoundTrip(values);
  });

  it('clone makes a deep copy', () => {
    const inner = new Set([1]);
    const original = { set: inner, map: new Map([['k', [1]]]) };
    const copy = clone(original);
    expect(copy).toEqual(original);
    expect(copy.set).not.toBe(inner);
    copy.set.add(2);
    copy.map.get('k')!.push(2);
    expect([...inner]).toEqual([1]);
    expect(original.map.get('k')).toEqual([1]);
  });

  it('encodeToBuffer and decode of bytes agree with the string form', () => {
    const value = { text: 'żółw 🐢', map: new Map([[1, 2]]) };
    const buffer = encodeToBuffer(value);
    expect(buffer.toString('utf8')).toBe(encode(value));
    expect(decode(buffer)).toEqual(value);
    expect(decode(new Uint8Array(buffer))).toEqual(value);
  });
});

describe('codec property: decode(encode(v)) is v', () => {
  const key = fc.oneof(
    fc.string({ maxLength: 6 }),
    fc.constantFrom('$type', '__proto__', 'entries', 'values', 'iso', 'constructor', ''),
  );
  const { value } = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      tie('primitive'),
      tie('array'),
      tie('record'),
      tie('map'),
      tie('set'),
      fc.date(),
    ),
    primitive: fc.oneof(
      fc.string({ unit: 'binary', maxLength: 8 }),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.constantFrom(NaN, Infinity, -Infinity, -0),
    ),
    array: fc.array(tie('value'), { maxLength: 4 }),
    record: fc
      .array(fc.tuple(key, tie('value')), { maxLength: 4 })
      .map((entries) => entries.reduce<Record<string, unknown>>((out, [k, v]) => withOwn(out, k, v), {})),
    map: fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 4 }).map((entries) => new Map(entries)),
    set: fc.array(tie('value'), { maxLength: 4 }).map((values) => new Set(values)),
  }));

  it('round-trips arbitrary values with their types', () => {
    fc.assert(
      fc.property(value, (v) => {
        const back = roundTrip(v);
        expect(back).toEqual(v);
        expect(structuralDifference(back, v)).toBeUndefined();
        // And the encoding is stable: encoding the decoded value gives the same text.
        expect(encode(back)).toBe(encode(v));
      }),
      { numRuns: 300 },
    );
  });

  /** Every object (array, Map, Set, Date, record) inside `value`, `value` included. */
  function objectsIn(value: unknown, out = new Set<object>()): Set<object> {
    if (value === null || typeof value !== 'object' || out.has(value)) return out;
    out.add(value);
    const inner =
      value instanceof Map ? [...value].flat() : value instanceof Set ? [...value] : Object.values(value as object);
    for (const v of inner) objectsIn(v, out);
    return out;
  }

  it('copyValue and encodeWithCopy copy exactly what a round trip gives, sharing no object with the value', () => {
    fc.assert(
      fc.property(value, (v) => {
        const original = objectsIn(v);
        for (const copy of [copyValue(v), encodeWithCopy(v).copy]) {
          expect(copy).toEqual(v);
          expect(structuralDifference(copy, v)).toBeUndefined();
          expect(encode(copy)).toBe(encode(v));
          expect([...objectsIn(copy)].filter((o) => original.has(o))).toEqual([]);
        }
        expect(encodeWithCopy(v).text).toBe(encode(v));
      }),
      { numRuns: 300 },
    );
  });

  it('copyValue refuses what the codec refuses, with the same typed error', () => {
    class Point {
      x = 1;
    }
    for (const bad of [{ at: new Point() }, [() => 1], { n: 1n }]) {
      const refused = thrownBy(() => copyValue(bad));
      expect(refused).toBeInstanceOf(UnserializableContentError);
      expect((refused as Error).message).toBe((thrownBy(() => encode(bad)) as Error).message);
    }
    let deep: unknown = 'bottom';
    for (let i = 0; i < 400; i++) deep = [deep];
    expect(thrownBy(() => copyValue(deep))).toBeInstanceOf(UnserializableContentError);
  });

  it('canonicalize is a function of the value: equal after a round trip', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalize(roundTrip(v))).toBe(canonicalize(v));
        expect(deepEqual(roundTrip(v), v)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe('codec refusals', () => {
  function refusal(value: unknown): UnserializableContentError {
    const error = thrownBy(() => encode(value));
    expect(error).toBeInstanceOf(UnserializableContentError);
    return error as UnserializableContentError;
  }

  it('refuses a throwing getter and Proxies with UnserializableContentError naming where they are', () => {
    const throwing = refusal({
      list: [
        {
          get boom(): never {
            throw new Error('getter exploded');
          },
        },
      ],
    });
    expect(throwing.path).toBe('$.list[0].boom');
    expect(throwing.message).toContain('getter exploded');
    expect(
      refusal({
        inner: new Proxy(
          {},
          {
            ownKeys: () => {
              throw new Error('trap');
            },
          },
        ),
      }).path,
    ).toBe('$.inner');
    expect(refusal(new Proxy([1, 2], {})).reason).toMatch(/Proxy/);
  });

  it('refuses a value nested deeper than the limit without overflowing the stack, and decodes no text nested past MAX_TEXT_DEPTH', () => {
    let deep: unknown = 0;
    for (let i = 0; i < 60_000; i++) deep = { d: deep };
    expect(refusal(deep).reason).toBe(`the value nests more than ${MAX_ENCODE_DEPTH} levels deep`);
    let fine: unknown = 0;
    for (let i = 0; i < 100; i++) fine = new Map([['k', fine]]);
    expect(decode(encode(fine))).toEqual(fine);
    expect(thrownBy(() => encode([[[1]]], { maxDepth: 2 }))).toBeInstanceOf(UnserializableContentError);
    const text = '['.repeat(60_000) + ']'.repeat(60_000);
    expect(jsonTextDepth(text)).toBe(60_000);
    expect(jsonTextDepth('["[[[", {"a": "\\"}]')).toBe(2);
    const refused = thrownBy(() => decode(text));
    expect(refused).toBeInstanceOf(CorruptDataError);
    expect((refused as Error).message).toContain(`more than ${MAX_TEXT_DEPTH} levels`);
  });

  it('refuses functions and names where they are', () => {
    const error = refusal({ a: { b: [1, 2, () => 1] } });
    expect(error.path).toBe('$.a.b[2]');
    expect(error.code).toBe('UNSERIALIZABLE_CONTENT');
    expect(error.message).toContain('$.a.b[2]');
    expect(refusal(function named() {}).path).toBe('$');
  });

  it('refuses symbols as values and as keys', () => {
    expect(refusal({ s: Symbol('x') }).path).toBe('$.s');
    expect(refusal({ inner: { [Symbol('key')]: 1 } }).path).toBe('$.inner');
    expect(refusal(new Map([[Symbol('k'), 1]])).path).toBe('$.<key 0>');
  });

  it('refuses BigInt', () => {
    expect(refusal([1, 2n]).path).toBe('$[1]');
    expect(refusal(new Map([['big', 1n]])).path).toBe('$.get("big")');
  });

  it('refuses cycles but not shared references', () => {
    const cyclic: Record<string, unknown> = { a: {} };
    (cyclic.a as Record<string, unknown>).back = cyclic;
    expect(refusal(cyclic).path).toBe('$.a.back');
    const list: unknown[] = [];
    list.push(new Set([list]));
    expect(refusal(list).path).toBe('$[0].<value 0>');
    const map = new Map<string, unknown>();
    map.set('self', map);
    expect(refusal(map).path).toBe('$.get("self")');

    const shared = { x: 1 };
    expect(roundTrip({ a: shared, b: shared, c: [shared, shared] })).toEqual({
      a: { x: 1 },
      b: { x: 1 },
      c: [{ x: 1 }, { x: 1 }],
    });
  });

  it('refuses class instances, naming the class', () => {
    class Point {
      constructor(readonly x: number) {}
    }
    const error = refusal({ where: new Point(1) });
    expect(error.path).toBe('$.where');
    expect(error.message).toContain('Point');
    expect(refusal({ buffer: Buffer.from('x') }).path).toBe('$.buffer');
    expect(refusal([new Uint8Array(2)]).path).toBe('$[0]');
    expect(refusal({ re: /x/ }).path).toBe('$.re');
    expect(refusal({ boxed: new Number(1) }).path).toBe('$.boxed');
    expect(refusal({ error: new Error('x') }).path).toBe('$.error');
  });

  it('accepts objects with a null prototype as plain objects', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    expect(roundTrip(bare)).toEqual({ a: 1 });
  });

  it('refuses an encoding over maxBytes with ContentTooLargeError, counting bytes not characters', () => {
    const text = 'é'.repeat(10); // 20 bytes of UTF-8, 22 with the quotes
    expect(encode(text, { maxBytes: 22 })).toBe(JSON.stringify(text));
    const error = thrownBy(() => encode(text, { maxBytes: 21, what: 'content of contact "c"' }));
    expect(error).toBeInstanceOf(ContentTooLargeError);
    expect(error).toMatchObject({ size: 22, limit: 21, code: 'CONTENT_TOO_LARGE' });
    expect((error as Error).message).toContain('content of contact "c"');
    expect(() => encodeToBuffer(text, { maxBytes: 21 })).toThrow(ContentTooLargeError);
    expect(encodeToBuffer(text, { maxBytes: 22 })).toHaveLength(22);
  });
});

describe('codec decode of bad input', () => {
  const corrupt = [
    '',
    'not json',
    '{"a":',
    '{"$type":"Frobnicator"}',
    '{"$type":null}',
    '{"$type":42}',
    '[{"$type":"Map","entries":[1,2]}]',
    '{"$type":"Map","entries":5}',
    '{"$type":"Map"}',
    '{"$type":"Set","values":"abc"}',
    '{"$type":"Date","iso":"not a date"}',
    '{"$type":"Date","iso":7}',
    '{"$type":"number","value":"42"}',
    '{"$type":"object","entries":[[1,2]]}',
    '{"$type":"object"}',
  ];

  it.each(corrupt)('refuses %j with CorruptDataError', (text) => {
    const error = thrownBy(() => decode(text));
    expect(error).toBeInstanceOf(CorruptDataError);
    expect((error as CorruptDataError).code).toBe('CORRUPT_DATA');
  });

  it('names where in the value the bad tag is', () => {
    const error = thrownBy(() => decode('{"a":[0,{"$type":"Frobnicator"}]}'));
    expect((error as Error).message).toContain('$.a[1]');
    expect((error as Error).message).toContain('Frobnicator');
  });

  it('refuses invalid UTF-8 bytes that do not form JSON', () => {
    expect(() => decode(Buffer.from([0xff, 0xfe, 0x00]))).toThrow(CorruptDataError);
  });
});

describe('canonicalize and deepEqual', () => {
  it('ignore Map and Set insertion order and object key order', () => {
    expect(
      canonicalize(
        new Map([
          ['a', 1],
          ['b', 2],
        ]),
      ),
    ).toBe(
      canonicalize(
        new Map([
          ['b', 2],
          ['a', 1],
        ]),
      ),
    );
    expect(canonicalize(new Set([1, 'x', { a: 1 }]))).toBe(canonicalize(new Set([{ a: 1 }, 'x', 1])));
    expect(canonicalize({ a: 1, b: { c: 2, d: 3 } })).toBe(canonicalize({ b: { d: 3, c: 2 }, a: 1 }));
    expect(deepEqual(new Map([[{ k: 1 }, new Set([1, 2])]]), new Map([[{ k: 1 }, new Set([2, 1])]]))).toBe(true);
  });

  it('ignore order for Map keys that are equal by value', () => {
    const a = new Map([
      [{ k: 1 }, 'first'],
      [{ k: 1 }, 'second'],
    ]);
    const b = new Map([
      [{ k: 1 }, 'second'],
      [{ k: 1 }, 'first'],
    ]);
    expect(deepEqual(a, b)).toBe(true);
  });

  it('keep array order and distinguish types', () => {
    expect(deepEqual([1, 2], [2, 1])).toBe(false);
    expect(deepEqual(1, '1')).toBe(false);
    expect(deepEqual(null, undefined)).toBe(false);
    expect(deepEqual({ a: undefined }, {})).toBe(false);
    expect(deepEqual(new Set([1]), [1])).toBe(false);
    expect(deepEqual(new Map([[1, 2]]), { 1: 2 })).toBe(false);
    expect(deepEqual(new Map([['a', 1]]), { a: 1 })).toBe(false);
    expect(deepEqual({ $type: 'Set', values: [] }, new Set())).toBe(false);
    expect(deepEqual(new Date(1), { $type: 'Date', iso: new Date(1).toISOString() })).toBe(false);
    expect(deepEqual(new Date(1), new Date(1))).toBe(true);
    expect(deepEqual(new Date(1), new Date(2))).toBe(false);
  });

  it('treat NaN as equal to itself and -0 as different from 0, as the codec does', () => {
    expect(deepEqual(NaN, NaN)).toBe(true);
    expect(deepEqual([NaN], [NaN])).toBe(true);
    expect(deepEqual(-0, 0)).toBe(false);
    expect(deepEqual([-0], [0])).toBe(false);
    expect(deepEqual(new Date(NaN), new Date(NaN))).toBe(true);
  });

  it('property: shuffling Map and Set entries and object keys keeps the canonical form', () => {
    const entries = fc.uniqueArray(
      fc.tuple(fc.string({ maxLength: 4 }), fc.oneof(fc.integer(), fc.string({ maxLength: 3 }))),
      {
        selector: ([k]) => k,
        maxLength: 8,
      },
    );
    fc.assert(
      fc.property(
        entries.chain((list) =>
          fc.tuple(fc.constant(list), fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length })),
        ),
        ([list, shuffled]) => {
          expect(canonicalize(new Map(list))).toBe(canonicalize(new Map(shuffled)));
          expect(canonicalize(new Set(list.map(([k]) => k)))).toBe(canonicalize(new Set(shuffled.map(([k]) => k))));
          const objectA = list.reduce<Record<string, unknown>>((o, [k, v]) => withOwn(o, k, v), {});
          const objectB = shuffled.reduce<Record<string, unknown>>((o, [k, v]) => withOwn(o, k, v), {});
          expect(deepEqual(objectA, objectB)).toBe(true);
        },
      ),
    );
  });

  it('property: different values give different canonical forms', () => {
    const scalar = fc.oneof(
      fc.string({ maxLength: 3 }),
      fc.integer({ min: -3, max: 3 }),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
    );
    fc.assert(
      fc.property(scalar, scalar, (a, b) => {
        expect(deepEqual(a, b)).toBe(Object.is(a, b));
        expect(deepEqual([a], new Set([b]))).toBe(false);
      }),
    );
  });
});
