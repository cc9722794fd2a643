import { types } from 'node:util';
import { ContentTooLargeError, CorruptDataError, SpineError, UnserializableContentError } from './errors';

/**
 * The one codec for state and events on every trip (JSON files, Pub/Sub, Cloud Storage).
 * It is JSON with tagged objects for what JSON cannot carry: `Map`, `Set`, `Date`,
 * `undefined`, `NaN`, `±Infinity`, `-0`. Plain objects that themselves have a `$type` key are
 * escaped, so any value round-trips exactly. Functions, symbols, `BigInt`, cycles and class
 * instances other than the ones above are refused with `UnserializableContentError`, as are
 * Proxies, properties whose getter throws, and values nested deeper than `maxDepth`.
 */
const TAG = '$type';

/** How deep a value may nest (levels of arrays, objects, Maps, Sets) when nothing else is said. */
export const MAX_ENCODE_DEPTH = 300;
/**
 * How deep encoded text may nest: each value level is at most three levels of JSON (a Map's
 * value sits in `{"entries": [[key, value]]}`). Checked by a scan without recursion before
 * anything walks the text, so a hostile text fails with a typed error, not a stack overflow.
 */
export const MAX_TEXT_DEPTH = 3 * MAX_ENCODE_DEPTH + 10;
const TOO_DEEP = 'the value nests too deep';

export interface EncodeOptions {
  /** Refuse with `ContentTooLargeError` when the encoding is longer than this many bytes. */
  maxBytes?: number;
  /** Names what is encoded in error messages. */
  what?: string;
  /** Refuse with `UnserializableContentError` a value nested deeper than this (default `MAX_ENCODE_DEPTH`). */
  maxDepth?: number;
}

export function encode(value: unknown, options: EncodeOptions = {}): string {
  return encodeWithCopy(value, options, false).text;
}

/**
 * `encode`, and with it (unless `withCopy` is false) the copy `decode` of the text would give,
 * made from the same walk of the value without parsing the text: one pass checks, measures and
 * copies what a caller hands over.
 */
export function encodeWithCopy<T>(value: T, options: EncodeOptions = {}, withCopy = true): { text: string; copy: T } {
  const maxDepth = Math.min(options.maxDepth ?? MAX_ENCODE_DEPTH, MAX_ENCODE_DEPTH);
  let safe: unknown;
  try {
    safe = toJsonSafe(value, '$', new Set(), maxDepth);
  } catch (error) {
    if (error instanceof UnserializableContentError && error.reason === TOO_DEEP)
      throw new UnserializableContentError(error.path, `the value nests more than ${maxDepth} levels deep`);
    if (error instanceof SpineError) throw error;
    throw new UnserializableContentError('$', `reading the value threw: ${(error as Error)?.message ?? String(error)}`);
  }
  const text = JSON.stringify(safe);
  if (options.maxBytes !== undefined) {
    // Only text longer than maxBytes / 3 characters can be longer than maxBytes bytes in UTF-8.
    const size = text.length * 3 <= options.maxBytes ? text.length : Buffer.byteLength(text, 'utf8');
    if (size > options.maxBytes) throw new ContentTooLargeError(size, options.maxBytes, options.what);
  }
  return { text, copy: (withCopy ? fromJsonSafe(safe, '$') : undefined) as T };
}

/** The most levels `copyValue` walks before it leaves the value to `clone` (which refuses deeper ones). */
const COPY_DEPTH = MAX_ENCODE_DEPTH;
class NotCopyable extends Error {}

/**
 * A deep copy of a value made of what the codec carries (plain objects, arrays, Map, Set, Date,
 * any primitive), without encoding it: for values checked where they entered (it does not look
 * for Proxies, cycles or symbol keys as `encode` does). Anything else (class instances,
 * functions, values nested too deep) goes through `clone`, which refuses it with the codec's
 * typed error.
 */
export function copyValue<T>(value: T): T {
  try {
    return copyInner(value, COPY_DEPTH) as T;
  } catch (error) {
    if (error instanceof NotCopyable) return clone(value);
    throw error;
  }
}

function copyInner(value: unknown, depthLeft: number): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') throw new NotCopyable();
    return value;
  }
  if (depthLeft <= 0) throw new NotCopyable();
  const inner = depthLeft - 1;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyInner(value[i], inner);
    return out;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    // A spread copies the flat fields at once (a key "__proto__" as an own property); then the nested values are copied.
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(out);
    for (let i = 0; i < keys.length; i++) {
      const nested = out[keys[i]!];
      if (nested !== null && typeof nested === 'object') setOwn(out, keys[i]!, copyInner(nested, inner));
      else if (typeof nested === 'function' || typeof nested === 'symbol' || typeof nested === 'bigint')
        throw new NotCopyable();
    }
    return out;
  }
  if (value instanceof Map) {
    const out = new Map<unknown, unknown>();
    for (const [k, v] of value) out.set(copyInner(k, inner), copyInner(v, inner));
    return out;
  }
  if (value instanceof Set) {
    const out = new Set<unknown>();
    for (const v of value) out.add(copyInner(v, inner));
    return out;
  }
  if (value instanceof Date) return new Date(value.getTime());
  throw new NotCopyable();
}

export function encodeToBuffer(value: unknown, options: EncodeOptions = {}): Buffer {
  const buffer = Buffer.from(
    encode(value, options.maxDepth === undefined ? {} : { maxDepth: options.maxDepth }),
    'utf8',
  );
  if (options.maxBytes !== undefined && buffer.length > options.maxBytes) {
    throw new ContentTooLargeError(buffer.length, options.maxBytes, options.what);
  }
  return buffer;
}

export function decode<T = unknown>(text: string | Buffer | Uint8Array): T {
  const source = typeof text === 'string' ? text : Buffer.from(text).toString('utf8');
  const depth = jsonTextDepth(source, MAX_TEXT_DEPTH);
  if (depth > MAX_TEXT_DEPTH)
    throw new CorruptDataError(`cannot decode: the text nests more than ${MAX_TEXT_DEPTH} levels deep`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch (error) {
    throw new CorruptDataError(`cannot decode: ${(error as Error).message}`, { cause: error });
  }
  // Revived in a walk of our own, not by a JSON.parse reviver: a reviver that returns
  // `undefined` deletes the property (or leaves a hole in an array) instead of keeping it.
  return fromJsonSafe(parsed, '$') as T;
}

/** A deep copy made by the codec, which also proves the value can be stored. */
export function clone<T>(value: T): T {
  return decode<T>(encode(value));
}

/**
 * How deep JSON text nests (brackets and braces outside strings), counted without recursion and
 * stopping once past `stopAbove`. Text that is not JSON gets some number; the parser judges it.
 */
export function jsonTextDepth(text: string, stopAbove = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c)
        i++; // backslash: the next character is escaped
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) inString = true;
    else if (char === 0x5b || char === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > stopAbove) return deepest;
      }
    } else if (char === 0x5d || char === 0x7d) depth--;
  }
  return deepest;
}

/** `object[key]`, with a getter that throws reported as content that cannot be stored. */
function readProperty(object: Record<string | number, unknown>, key: string | number, path: string): unknown {
  try {
    return object[key];
  } catch (error) {
    throw new UnserializableContentError(path, `reading it threw: ${(error as Error)?.message ?? String(error)}`);
  }
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function toJsonSafe(value: unknown, path: string, ancestors: Set<object>, depthLeft: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isNaN(value)) return { [TAG]: 'number', value: 'NaN' };
      if (value === Infinity) return { [TAG]: 'number', value: 'Infinity' };
      if (value === -Infinity) return { [TAG]: 'number', value: '-Infinity' };
      if (Object.is(value, -0)) return { [TAG]: 'number', value: '-0' };
      return value;
    case 'undefined':
      return { [TAG]: 'undefined' };
    case 'function':
      throw new UnserializableContentError(path, 'functions cannot be stored');
    case 'symbol':
      throw new UnserializableContentError(path, 'symbols cannot be stored');
    case 'bigint':
      throw new UnserializableContentError(path, 'BigInt values cannot be stored');
  }
  if (value === null) return null;
  const object = value as object;
  // A Proxy runs code of its own on every read, so what is stored could differ from what was checked.
  if (types.isProxy(object))
    throw new UnserializableContentError(path, 'Proxy objects cannot be stored (store a plain copy)');
  if (depthLeft <= 0) throw new UnserializableContentError(path, TOO_DEEP);
  const inner = depthLeft - 1;
  if (ancestors.has(object)) throw new UnserializableContentError(path, 'the value contains a cycle');
  ancestors.add(object);
  try {
    if (Array.isArray(object)) {
      const out = new Array<unknown>(object.length);
      for (let i = 0; i < object.length; i++)
        out[i] = toJsonSafe(
          readProperty(object as unknown as Record<number, unknown>, i, `${path}[${i}]`),
          `${path}[${i}]`,
          ancestors,
          inner,
        );
      return out;
    }
    if (object instanceof Map) {
      const entries: [unknown, unknown][] = [];
      let i = 0;
      for (const [k, v] of object) {
        entries.push([
          toJsonSafe(k, `${path}.<key ${i}>`, ancestors, inner),
          toJsonSafe(v, `${path}.get(${describeKey(k)})`, ancestors, inner),
        ]);
        i++;
      }
      return { [TAG]: 'Map', entries };
    }
    if (object instanceof Set) {
      const values: unknown[] = [];
      let i = 0;
      for (const v of object) values.push(toJsonSafe(v, `${path}.<value ${i++}>`, ancestors, inner));
      return { [TAG]: 'Set', values };
    }
    if (object instanceof Date) {
      const time = object.getTime();
      return { [TAG]: 'Date', iso: Number.isNaN(time) ? null : object.toISOString() };
    }
    if (!isPlainObject(object)) {
      const name = (object as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
      throw new UnserializableContentError(
        path,
        `instances of ${name} cannot be stored (use plain objects, arrays, Map, Set or Date)`,
      );
    }
    if (Object.getOwnPropertySymbols(object).length > 0) {
      throw new UnserializableContentError(path, 'symbol-keyed properties cannot be stored');
    }
    const keys = Object.keys(object);
    const record = object as Record<string, unknown>;
    if (keys.includes(TAG)) {
      return {
        [TAG]: 'object',
        entries: keys.map((k) => [
          k,
          toJsonSafe(readProperty(record, k, `${path}.${k}`), `${path}.${k}`, ancestors, inner),
        ]),
      };
    }
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      setOwn(out, key, toJsonSafe(readProperty(record, key, `${path}.${key}`), `${path}.${key}`, ancestors, inner));
    }
    return out;
  } finally {
    ancestors.delete(object);
  }
}

function describeKey(key: unknown): string {
  return typeof key === 'string' ? JSON.stringify(key) : typeof key;
}

function fromJsonSafe(value: unknown, path: string): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = fromJsonSafe(value[i], `${path}[${i}]`);
    return out;
  }
  const record = value as Record<string, unknown>;
  if (!Object.prototype.hasOwnProperty.call(record, TAG)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(record)) setOwn(out, key, fromJsonSafe(record[key], `${path}.${key}`));
    return out;
  }
  const tag = record[TAG];
  const corrupt = (what: string) => new CorruptDataError(`cannot decode ${path}: ${what}`);
  switch (tag) {
    case 'Map': {
      const entries = record.entries;
      if (!Array.isArray(entries)) throw corrupt('a Map needs an entries array');
      return new Map(
        entries.map((entry, i) => {
          if (!Array.isArray(entry) || entry.length !== 2) throw corrupt(`Map entry ${i} is not a [key, value] pair`);
          return [
            fromJsonSafe(entry[0], `${path}.<key ${i}>`),
            fromJsonSafe(entry[1], `${path}.<value ${i}>`),
          ] as const;
        }),
      );
    }
    case 'Set': {
      const values = record.values;
      if (!Array.isArray(values)) throw corrupt('a Set needs a values array');
      return new Set(values.map((v, i) => fromJsonSafe(v, `${path}.<value ${i}>`)));
    }
    case 'Date': {
      const iso = record.iso;
      if (iso === null) return new Date(NaN);
      const date = typeof iso === 'string' ? new Date(iso) : undefined;
      if (!date || Number.isNaN(date.getTime()))
        throw corrupt(`a Date needs an ISO time or null, not ${JSON.stringify(iso)}`);
      return date;
    }
    case 'undefined':
      return undefined;
    case 'number':
      switch (record.value) {
        case 'NaN':
          return NaN;
        case 'Infinity':
          return Infinity;
        case '-Infinity':
          return -Infinity;
        case '-0':
          return -0;
        default:
          throw corrupt(`unknown special number ${JSON.stringify(record.value)}`);
      }
    case 'object': {
      const entries = record.entries;
      if (!Array.isArray(entries)) throw corrupt('an escaped object needs an entries array');
      const out: Record<string, unknown> = {};
      entries.forEach((entry, i) => {
        if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string')
          throw corrupt(`object entry ${i} is not a [string, value] pair`);
        setOwn(out, entry[0], fromJsonSafe(entry[1], `${path}.${entry[0]}`));
      });
      return out;
    }
    default:
      throw new CorruptDataError(`cannot decode ${path}: unknown codec tag ${JSON.stringify(tag)}`);
  }
}

/** Sets an own enumerable property, even one named `__proto__` (plain assignment would set the prototype). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/**
 * A canonical string for a value: equal values (Maps and Sets in any insertion order, objects
 * in any key order) give equal strings. Used for deep equality and set membership.
 */
export function canonicalize(value: unknown): string {
  return JSON.stringify(toCanonical(value));
}

function toCanonical(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return { [TAG]: 'number', value: String(value) };
    if (typeof value === 'number' && Object.is(value, -0)) return { [TAG]: 'number', value: '-0' };
    if (value === undefined) return { [TAG]: 'undefined' };
    return value;
  }
  if (Array.isArray(value)) return value.map(toCanonical);
  if (value instanceof Map) {
    const entries = [...value].map(([k, v]) => [canonicalize(k), toCanonical(v)] as const);
    // By key, then by value, so keys that are equal by value (distinct objects) also sort the same.
    entries.sort((a, b) => compareStrings(a[0], b[0]) || compareStrings(JSON.stringify(a[1]), JSON.stringify(b[1])));
    return { [TAG]: 'Map', entries };
  }
  if (value instanceof Set) {
    return { [TAG]: 'Set', values: [...value].map(canonicalize).sort() };
  }
  if (value instanceof Date) return { [TAG]: 'Date', iso: Number.isNaN(value.getTime()) ? null : value.toISOString() };
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  return { [TAG]: 'object', entries: keys.map((k) => [k, toCanonical(record[k])]) };
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  // Object.is, not ===: the codec keeps 0 and -0 apart, so deep equality does too.
  if (Object.is(a, b)) return true;
  return canonicalize(a) === canonicalize(b);
}
