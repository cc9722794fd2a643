import { canonicalize, deepEqual } from './codec';

/**
 * Bassline's mergeable collections. Grow set/map take the union, shrink set/map the
 * intersection (empty is a contradiction), grow array appends, shrink array keeps the items
 * both sides have. Plain `Set`, `Map` and arrays merge as growing ones.
 */
export type GrowSet<T = unknown> = { _tag: 'GrowSet'; values: Set<T> };
export type ShrinkSet<T = unknown> = { _tag: 'ShrinkSet'; values: Set<T> };
export type GrowArray<T = unknown> = { _tag: 'GrowArray'; items: T[] };
export type ShrinkArray<T = unknown> = { _tag: 'ShrinkArray'; items: T[] };
export type GrowMap<K = unknown, V = unknown> = { _tag: 'GrowMap'; entries: Map<K, V> };
export type ShrinkMap<K = unknown, V = unknown> = { _tag: 'ShrinkMap'; entries: Map<K, V> };
export type Mergeable = GrowSet | ShrinkSet | GrowArray | ShrinkArray | GrowMap | ShrinkMap;

const MERGEABLE_TAGS = new Set(['GrowSet', 'ShrinkSet', 'GrowArray', 'ShrinkArray', 'GrowMap', 'ShrinkMap']);

export const growSet = <T>(values: Iterable<T>): GrowSet<T> => ({ _tag: 'GrowSet', values: new Set(values) });
export const shrinkSet = <T>(values: Iterable<T>): ShrinkSet<T> => ({ _tag: 'ShrinkSet', values: new Set(values) });
export const growArray = <T>(items: Iterable<T>): GrowArray<T> => ({ _tag: 'GrowArray', items: [...items] });
export const shrinkArray = <T>(items: Iterable<T>): ShrinkArray<T> => ({ _tag: 'ShrinkArray', items: [...items] });
export const growMap = <K, V>(entries: Iterable<[K, V]>): GrowMap<K, V> => ({
  _tag: 'GrowMap',
  entries: new Map(entries),
});
export const shrinkMap = <K, V>(entries: Iterable<[K, V]>): ShrinkMap<K, V> => ({
  _tag: 'ShrinkMap',
  entries: new Map(entries),
});

export function isMergeable(value: unknown): value is Mergeable {
  return (
    typeof value === 'object' && value !== null && MERGEABLE_TAGS.has((value as { _tag?: unknown })._tag as string)
  );
}

export type MergeResult = { ok: true; value: unknown } | { ok: false; message: string };

const contradiction = (message: string): MergeResult => ({ ok: false, message });

/** Accepts arrays for sets and records or entry arrays for maps, as JSON producers send them. */
export function normalizeMergeable(value: Mergeable): Mergeable {
  const raw = value as { _tag: Mergeable['_tag']; values?: unknown; items?: unknown; entries?: unknown };
  switch (raw._tag) {
    case 'GrowSet':
    case 'ShrinkSet':
      return { _tag: raw._tag, values: toSet(raw.values) };
    case 'GrowArray':
    case 'ShrinkArray':
      return {
        _tag: raw._tag,
        items: Array.isArray(raw.items) ? raw.items : raw.items instanceof Set ? [...raw.items] : [],
      };
    case 'GrowMap':
    case 'ShrinkMap':
      return { _tag: raw._tag, entries: toMap(raw.entries) };
  }
}

function toSet(values: unknown): Set<unknown> {
  if (values instanceof Set || Array.isArray(values)) return uniqueByValue(values);
  return new Set();
}

/**
 * Members compared by value (canonical form): a Set may hold two distinct objects that are
 * equal by value, and keeping both would make merge results depend on merge order.
 */
function uniqueByValue(values: Iterable<unknown>): Set<unknown> {
  const seen = new Set<string>();
  const out = new Set<unknown>();
  for (const value of values) {
    const key = canonicalize(value);
    if (!seen.has(key)) {
      seen.add(key);
      out.add(value);
    }
  }
  return out;
}

function toMap(entries: unknown): Map<unknown, unknown> {
  if (entries instanceof Map) return entries;
  if (Array.isArray(entries)) return new Map(entries as [unknown, unknown][]);
  if (entries && typeof entries === 'object') return new Map(Object.entries(entries));
  return new Map();
}

/** Merges `incoming` into `current`. Never mutates either. */
export function mergeValues(current: unknown, incoming: unknown): MergeResult {
  if (incoming === undefined || incoming === null) return { ok: true, value: current };
  if (current === undefined || current === null) {
    return { ok: true, value: isMergeable(incoming) ? normalizeMergeable(incoming) : incoming };
  }
  if (isMergeable(current) || isMergeable(incoming)) {
    if (!isMergeable(current) || !isMergeable(incoming) || current._tag !== incoming._tag) {
      return contradiction(`cannot merge ${describe(incoming)} into ${describe(current)}`);
    }
    return mergeTagged(normalizeMergeable(current), normalizeMergeable(incoming));
  }
  if (current instanceof Set && incoming instanceof Set) return { ok: true, value: union(current, incoming) };
  if (current instanceof Map && incoming instanceof Map) return mergeMaps(current, incoming, 'grow');
  if (Array.isArray(current) && Array.isArray(incoming)) return { ok: true, value: [...current, ...incoming] };
  if (deepEqual(current, incoming)) return { ok: true, value: current };
  return contradiction(`cannot merge ${describe(incoming)} into ${describe(current)}: the values differ`);
}

function mergeTagged(current: Mergeable, incoming: Mergeable): MergeResult {
  switch (current._tag) {
    case 'GrowSet':
      return { ok: true, value: { _tag: 'GrowSet', values: union(current.values, (incoming as GrowSet).values) } };
    case 'ShrinkSet': {
      const values = intersection(current.values, (incoming as ShrinkSet).values);
      if (values.size === 0) return contradiction('ShrinkSet intersection is empty');
      return { ok: true, value: { _tag: 'ShrinkSet', values } };
    }
    case 'GrowArray':
      return { ok: true, value: { _tag: 'GrowArray', items: [...current.items, ...(incoming as GrowArray).items] } };
    case 'ShrinkArray': {
      const keep = new Set((incoming as ShrinkArray).items.map(canonicalize));
      const items = current.items.filter((item) => keep.has(canonicalize(item)));
      if (items.length === 0) return contradiction('ShrinkArray intersection is empty');
      return { ok: true, value: { _tag: 'ShrinkArray', items } };
    }
    case 'GrowMap':
    case 'ShrinkMap': {
      const mode = current._tag === 'GrowMap' ? 'grow' : 'shrink';
      const merged = mergeMaps(current.entries, (incoming as GrowMap).entries, mode);
      if (!merged.ok) return merged;
      const entries = merged.value as Map<unknown, unknown>;
      if (mode === 'shrink' && entries.size === 0) return contradiction('ShrinkMap intersection is empty');
      return { ok: true, value: { _tag: current._tag, entries } };
    }
  }
}

function union(a: Set<unknown>, b: Set<unknown>): Set<unknown> {
  return uniqueByValue([...a, ...b]);
}

function intersection(a: Set<unknown>, b: Set<unknown>): Set<unknown> {
  const inB = new Set([...b].map(canonicalize));
  return uniqueByValue([...a].filter((value) => inB.has(canonicalize(value))));
}

/** Keys are matched by value; values under a shared key merge recursively. */
function mergeMaps(
  current: Map<unknown, unknown>,
  incoming: Map<unknown, unknown>,
  mode: 'grow' | 'shrink',
): MergeResult {
  const ours = byCanonicalKey(current);
  if (!ours.ok) return ours;
  const theirs = byCanonicalKey(incoming);
  if (!theirs.ok) return theirs;
  const out = new Map<unknown, unknown>();
  for (const [canonicalKey, [key, value]] of ours.entries) {
    const other = theirs.entries.get(canonicalKey);
    if (other === undefined) {
      if (mode === 'grow') out.set(key, value);
      continue;
    }
    const merged = mergeValues(value, other[1]);
    if (!merged.ok) return contradiction(`at key ${canonicalKey}: ${merged.message}`);
    out.set(key, merged.value);
  }
  if (mode === 'grow') {
    for (const [canonicalKey, [key, value]] of theirs.entries) if (!ours.entries.has(canonicalKey)) out.set(key, value);
  }
  return { ok: true, value: out };
}

/**
 * Entries by canonical key. A Map may hold two distinct objects equal by value as keys; they are
 * one key here, with their values merged, so the result does not depend on merge order.
 */
function byCanonicalKey(
  map: Map<unknown, unknown>,
): { ok: true; entries: Map<string, [unknown, unknown]> } | { ok: false; message: string } {
  const entries = new Map<string, [unknown, unknown]>();
  for (const [key, value] of map) {
    const canonicalKey = canonicalize(key);
    const earlier = entries.get(canonicalKey);
    if (earlier === undefined) {
      entries.set(canonicalKey, [key, value]);
      continue;
    }
    const merged = mergeValues(earlier[1], value);
    if (!merged.ok) return { ok: false, message: `at key ${canonicalKey}: ${merged.message}` };
    entries.set(canonicalKey, [earlier[0], merged.value]);
  }
  return { ok: true, entries };
}

function describe(value: unknown): string {
  if (isMergeable(value)) return value._tag;
  if (value instanceof Set) return 'a Set';
  if (value instanceof Map) return 'a Map';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a Date';
  if (typeof value === 'object' && value !== null) return 'an object';
  const shown = JSON.stringify(value);
  return shown && shown.length > 40 ? `${typeof value} ${shown.slice(0, 40)}…` : `${typeof value} ${shown}`;
}
