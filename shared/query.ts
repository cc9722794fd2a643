import { deepEqual } from './codec';
import type { Group, GroupQuery } from './model';

/** Group attributes the query conventions read. */
export const AUTHOR_ATTRIBUTE = 'bassline.author';
export const TYPE_ATTRIBUTE = 'bassline.type';
export const TAGS_ATTRIBUTE = 'bassline.tags';

function tagsOf(attributes: Record<string, unknown>): Set<unknown> {
  const tags = attributes[TAGS_ATTRIBUTE];
  if (Array.isArray(tags)) return new Set(tags);
  if (tags instanceof Set) return tags;
  return new Set();
}

/** True when the group meets every criterion of the query; an empty query matches all groups. */
export function groupMatches(group: Group, query: GroupQuery): boolean {
  const attributes = group.attributes ?? {};
  if (query.author !== undefined && attributes[AUTHOR_ATTRIBUTE] !== query.author) return false;
  if (query.type !== undefined && attributes[TYPE_ATTRIBUTE] !== query.type) return false;
  if (query.tags !== undefined && query.tags.length > 0) {
    const tags = tagsOf(attributes);
    if (!query.tags.every((tag) => tags.has(tag))) return false;
  }
  if (query.attributes !== undefined) {
    for (const [key, expected] of Object.entries(query.attributes)) {
      if (!(key in attributes) || !deepEqual(attributes[key], expected)) return false;
    }
  }
  return true;
}
