import { invalid } from './errors';
import { globToRegExp } from './glob';
import type { ObjectEntry, ObjectVersion } from './model';

export interface ListObjectsOptions {
  prefix?: string;
  delimiter?: string;
  /** Only names >= startOffset (after `prefix` filtering, as in the service). */
  startOffset?: string;
  /** Only names < endOffset. */
  endOffset?: string;
  pageToken?: string;
  maxResults?: number;
  /** List every stored generation, not only live objects. */
  versions?: boolean;
  /** Also list objects whose name ends with the delimiter right after the prefix. */
  includeTrailingDelimiter?: boolean;
  /** Only names matching this glob (see glob.ts). */
  matchGlob?: string;
}

export interface ObjectListing {
  items: ObjectVersion[];
  prefixes: string[];
  nextPageToken?: string;
}

export const DEFAULT_MAX_RESULTS = 1000;

/** Where the previous page stopped: after an object (and generation), or after a whole prefix. */
type Cursor = { name: string; generation: number } | { prefix: string };

/**
 * Lists one bucket in lexicographic order. `names` is sorted; `entries` holds every generation.
 * Items and prefixes together count toward `maxResults`, and a prefix is reported once across pages.
 */
export function listObjects(
  names: readonly string[],
  entries: ReadonlyMap<string, ObjectEntry>,
  options: ListObjectsOptions,
): ObjectListing {
  const prefix = options.prefix ?? '';
  const maxResults = Math.min(options.maxResults ?? DEFAULT_MAX_RESULTS, DEFAULT_MAX_RESULTS);
  const cursor = options.pageToken ? decodeCursor(options.pageToken) : undefined;
  const glob = options.matchGlob ? globToRegExp(options.matchGlob) : undefined;
  const lowerBound = [prefix, options.startOffset ?? '', cursorStart(cursor)].reduce((a, b) => (a > b ? a : b));

  const listing: ObjectListing = { items: [], prefixes: [] };
  let last: Cursor | undefined;
  const full = () => listing.items.length + listing.prefixes.length >= maxResults;
  const stopHere = (): ObjectListing => {
    if (last) listing.nextPageToken = encodeCursor(last);
    return listing;
  };

  for (let i = firstIndexAtLeast(names, lowerBound); i < names.length; i++) {
    const name = names[i]!;
    if (!name.startsWith(prefix)) break;
    if (options.endOffset !== undefined && options.endOffset !== '' && name >= options.endOffset) break;
    if (cursor && 'prefix' in cursor && name.startsWith(cursor.prefix)) continue;
    if (glob && !glob.test(name)) continue;

    const versions = versionsToList(entries.get(name), options.versions ?? false).filter(
      (version) => !cursor || !('name' in cursor) || name > cursor.name || version.generation > cursor.generation,
    );
    if (versions.length === 0) continue;

    if (options.delimiter) {
      const at = name.indexOf(options.delimiter, prefix.length);
      if (at >= 0) {
        const folder = name.slice(0, at + options.delimiter.length);
        // The folder object itself goes first, so a page that ends between it and its prefix resumes correctly.
        if (folder === name && options.includeTrailingDelimiter) {
          for (const version of versions) {
            if (full()) return stopHere();
            listing.items.push(version);
            last = { name, generation: version.generation };
          }
        }
        if (!(last && 'prefix' in last && last.prefix === folder)) {
          if (full()) return stopHere();
          listing.prefixes.push(folder);
          last = { prefix: folder };
        }
        continue;
      }
    }
    for (const version of versions) {
      if (full()) return stopHere();
      listing.items.push(version);
      last = { name, generation: version.generation };
    }
  }
  return listing;
}

/** Buckets: a prefix filter and pagination by name. */
export function pageByName<T extends { name: string }>(
  sorted: readonly T[],
  options: { prefix?: string; pageToken?: string; maxResults?: number },
): { items: T[]; nextPageToken?: string } {
  const prefix = options.prefix ?? '';
  const after = options.pageToken ? Buffer.from(options.pageToken, 'base64url').toString('utf8') : '';
  const maxResults = Math.min(options.maxResults ?? DEFAULT_MAX_RESULTS, DEFAULT_MAX_RESULTS);
  const matching = sorted.filter((item) => item.name.startsWith(prefix) && item.name > after);
  const items = matching.slice(0, maxResults);
  const lastItem = items[items.length - 1];
  return matching.length > maxResults && lastItem
    ? { items, nextPageToken: Buffer.from(lastItem.name, 'utf8').toString('base64url') }
    : { items };
}

function versionsToList(entry: ObjectEntry | undefined, allVersions: boolean): ObjectVersion[] {
  if (!entry) return [];
  if (!allVersions) return entry.live ? [entry.live] : [];
  return entry.live ? [...entry.noncurrent, entry.live] : [...entry.noncurrent];
}

/** Binary search: index of the first name >= bound. */
function firstIndexAtLeast(names: readonly string[], bound: string): number {
  let low = 0;
  let high = names.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (names[middle]! < bound) low = middle + 1;
    else high = middle;
  }
  return low;
}

function cursorStart(cursor: Cursor | undefined): string {
  if (!cursor) return '';
  return 'prefix' in cursor ? cursor.prefix : cursor.name;
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url');
}

function decodeCursor(token: string): Cursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) {
      const value = parsed as Record<string, unknown>;
      if (typeof value.prefix === 'string') return { prefix: value.prefix };
      if (typeof value.name === 'string' && typeof value.generation === 'number') {
        return { name: value.name, generation: value.generation };
      }
    }
  } catch {
    // falls through to the service's answer for a token it did not issue
  }
  throw invalid('The page token is invalid.');
}
