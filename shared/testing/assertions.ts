import assert from 'node:assert/strict';

/**
 * The few comparisons the conformance suite needs beyond `node:assert`, with jest's `toEqual`
 * meaning (properties holding `undefined` and prototypes are ignored), so a backend that
 * passed under jest's `expect` passes the same checks under any runner.
 */
function comparable(value: unknown): unknown {
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [comparable(k), comparable(v)]));
  if (value instanceof Set) return new Set([...value].map(comparable));
  if (Array.isArray(value)) return value.map(comparable);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  return Object.fromEntries(Object.entries(value).flatMap(([k, v]) => (v === undefined ? [] : [[k, comparable(v)]])));
}

export function assertEqual(actual: unknown, expected: unknown, message?: string): void {
  assert.deepStrictEqual(comparable(actual), comparable(expected), message);
}

/** Each key of `expected` equals (as `assertEqual`) the same key of `actual`; other keys are ignored. */
export function assertMatches(actual: unknown, expected: Record<string, unknown>): void {
  assert.ok(
    actual !== null && typeof actual === 'object',
    `expected an object matching ${JSON.stringify(expected)}, got ${String(actual)}`,
  );
  const picked = Object.fromEntries(
    Object.keys(expected).map((key) => [key, (actual as Record<string, unknown>)[key]]),
  );
  assertEqual(picked, expected);
}

export function assertIncludes<T>(list: readonly T[] | undefined, item: T): void {
  assert.ok(list?.includes(item), `expected ${JSON.stringify(list)} to include ${JSON.stringify(item)}`);
}

export function assertIncludesAll<T>(list: readonly T[] | undefined, items: readonly T[]): void {
  for (const item of items) assertIncludes(list, item);
}

export function assertExcludes<T>(list: readonly T[], item: T): void {
  assert.ok(!list.includes(item), `expected ${JSON.stringify(list)} not to include ${JSON.stringify(item)}`);
}
