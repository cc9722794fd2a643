import { invalid } from './errors';

/**
 * Partial responses (`fields=items(name,size),nextPageToken`): the selector grammar of Google
 * APIs — comma-separated paths, `a/b` for nested fields, `a(b,c)` for several sub-fields, applied
 * to every element of an array.
 */
interface Mask {
  [field: string]: Mask | true;
}

export function applyFieldMask<T>(value: T, fields: string | undefined): T {
  if (!fields || !fields.trim()) return value;
  return project(value, parseMask(fields)) as T;
}

export function parseMask(fields: string): Mask {
  let position = 0;

  const parseList = (closing: string | undefined): Mask => {
    const mask: Mask = {};
    for (;;) {
      const start = position;
      while (position < fields.length && !',()'.includes(fields.charAt(position))) position++;
      const path = fields.slice(start, position).trim();
      if (!path) throw invalid(`Invalid field selection: ${fields}`);
      let leaf: Mask | true = true;
      if (fields.charAt(position) === '(') {
        position++;
        leaf = parseList(')');
      }
      addPath(mask, path.split('/'), leaf);
      const next = fields.charAt(position);
      if (next === ',') {
        position++;
        continue;
      }
      if (closing !== undefined && next === closing) {
        position++;
        return mask;
      }
      if (closing === undefined && position >= fields.length) return mask;
      throw invalid(`Invalid field selection: ${fields}`);
    }
  };

  return parseList(undefined);
}

function addPath(mask: Mask, segments: string[], leaf: Mask | true): void {
  const [head, ...rest] = segments;
  if (head === undefined) return;
  const key = head.trim();
  if (rest.length === 0) {
    const existing = mask[key];
    mask[key] = existing && existing !== true && leaf !== true ? { ...existing, ...leaf } : leaf === true ? true : leaf;
    return;
  }
  const existing = mask[key];
  if (existing === true) return;
  const child: Mask = existing ?? {};
  mask[key] = child;
  addPath(child, rest, leaf);
}

function project(value: unknown, mask: Mask | true): unknown {
  if (mask === true || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => project(item, mask));
  const source = value as Record<string, unknown>;
  const result: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(mask)) {
    if (key === '*') return source;
    if (source[key] !== undefined) result[key] = project(source[key], sub);
  }
  return result;
}
