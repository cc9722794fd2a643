import type { Group, GroupQuery } from '../model';
import { groupMatches } from '../query';

/** One group in a network's index: the attributes its record had at `generation` (the record object's). */
export interface GroupIndexEntry {
  generation: string;
  attributes?: Record<string, unknown>;
}

/**
 * What `networks/{network}/index.json` holds: the attributes of every group record of the
 * network that has any, so a query reads the one index object and then only the groups that
 * match, instead of every group. Groups without attributes need no entry (only a query without
 * criteria matches them, and that one lists the groups instead), so the writes of contacts to new
 * groups never touch the index. `complete` is false when the index may lack groups (it was created while
 * groups already existed, e.g. after it was lost): a query then scans and rebuilds it.
 */
export interface StoredGroupIndex {
  version: 1;
  complete: boolean;
  /** A `Map`, which the codec keeps as one: group ids are any strings, "__proto__" included. */
  groups: Map<string, GroupIndexEntry>;
}

/**
 * A change to the index that a group record write or delete implies. Entries are ordered by the
 * record's generation (Cloud Storage generations only grow for one name), so changes applied
 * late or twice never replace what a newer record write put there.
 */
export type GroupIndexChange =
  | { kind: 'put'; groupId: string; generation: string; attributes?: Record<string, unknown> }
  /** `generation`: of the record deleted, when known; an entry of a newer record stays. */
  | { kind: 'delete'; groupId: string; generation?: string };

/** True when the attributes hold anything a query could match. */
export function hasAttributes(attributes: Record<string, unknown> | undefined): boolean {
  return attributes !== undefined && Object.keys(attributes).length > 0;
}

/** A query every group matches (no criteria): answered from a listing of the groups, not the index. */
export function isUnconstrained(query: GroupQuery): boolean {
  return (
    query.author === undefined &&
    query.type === undefined &&
    (query.tags === undefined || query.tags.length === 0) &&
    (query.attributes === undefined || Object.keys(query.attributes).length === 0)
  );
}

export function emptyGroupIndex(): StoredGroupIndex {
  return { version: 1, complete: true, groups: new Map() };
}

/** True when `value` has the shape of a stored index; anything else is treated as lost and rebuilt. */
export function isGroupIndex(value: unknown): value is StoredGroupIndex {
  if (typeof value !== 'object' || value === null) return false;
  const index = value as Partial<StoredGroupIndex>;
  if (index.version !== 1 || typeof index.complete !== 'boolean') return false;
  if (!(index.groups instanceof Map)) return false;
  return [...index.groups.values()].every(
    (entry) =>
      typeof entry === 'object' &&
      entry !== null &&
      typeof entry.generation === 'string' &&
      /^\d+$/.test(entry.generation) &&
      (entry.attributes === undefined || (typeof entry.attributes === 'object' && entry.attributes !== null)),
  );
}

export function compareGenerations(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Applies `changes` to `index` in place; true when anything changed. */
export function applyGroupIndexChanges(index: StoredGroupIndex, changes: readonly GroupIndexChange[]): boolean {
  let changed = false;
  for (const change of changes) {
    const entry = index.groups.get(change.groupId);
    if (change.kind === 'put') {
      if (entry && compareGenerations(entry.generation, change.generation) >= 0) continue;
      // Kept without attributes rather than removed, so an older write applied late cannot bring them back.
      if (!entry && !hasAttributes(change.attributes)) continue;
      index.groups.set(change.groupId, {
        generation: change.generation,
        ...(hasAttributes(change.attributes) ? { attributes: change.attributes } : {}),
      });
      changed = true;
    } else if (
      entry &&
      (change.generation === undefined || compareGenerations(entry.generation, change.generation) <= 0)
    ) {
      index.groups.delete(change.groupId);
      changed = true;
    }
  }
  return changed;
}

/** Ids of the groups whose indexed attributes match `query`, ascending. */
export function indexedMatches(index: StoredGroupIndex, query: GroupQuery): string[] {
  return [...index.groups]
    .filter(([, entry]) => groupMatches({ attributes: entry.attributes } as Group, query))
    .map(([id]) => id)
    .sort();
}
