import { invalidArgument } from './errors';

export interface Page<T> {
  items: T[];
  /** Empty when there are no more results. */
  nextPageToken: string;
}

/**
 * One page of `items` (already sorted by `keyOf`). The token names the last key served,
 * so a page stays correct when items before it are removed between calls.
 */
export function paginate<T>(
  items: T[],
  keyOf: (item: T) => string,
  request: { pageSize?: number; pageToken?: string },
  maxPageSize: number,
): Page<T> {
  const requested = request.pageSize ?? 0;
  if (requested < 0) throw invalidArgument(`page_size must not be negative (got ${requested})`);
  const size = requested === 0 ? maxPageSize : Math.min(requested, maxPageSize);
  const after = request.pageToken ? decodeToken(request.pageToken) : undefined;
  const start = after === undefined ? 0 : items.findIndex((item) => keyOf(item) > after);
  const remaining = start < 0 ? [] : items.slice(start);
  const pageItems = remaining.slice(0, size);
  const last = pageItems.at(-1);
  const more = remaining.length > size && last !== undefined;
  return { items: pageItems, nextPageToken: more ? encodeToken(keyOf(last)) : '' };
}

const encodeToken = (after: string) => Buffer.from(JSON.stringify({ after })).toString('base64url');

function decodeToken(token: string): string {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (parsed && typeof parsed === 'object' && 'after' in parsed && typeof parsed.after === 'string')
      return parsed.after;
  } catch {
    // fall through to the error below
  }
  throw invalidArgument('page_token is invalid: pass the next_page_token of the previous response unchanged');
}
