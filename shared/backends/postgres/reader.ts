import type { GroupQuery, GroupState, NetworkState } from '../../model';
import { AUTHOR_ATTRIBUTE, groupMatches, TAGS_ATTRIBUTE, TYPE_ATTRIBUTE } from '../../query';
import { assembleGroupState } from '../group-records';
import type { StateReader } from '../state-reader';
import type { GroupFilter, GroupRow, PostgresStateStore } from './store';

/** Reads of whole groups and networks, each one SQL statement. */
export class PostgresStateReader implements StateReader {
  constructor(private readonly postgres: PostgresStateStore) {}

  async readGroup(networkId: string, groupId: string): Promise<GroupState | null> {
    const [row] = await this.postgres.readGroups(networkId, { groupId });
    return row ? assembleGroupState(row.record, row.contacts) : null;
  }

  async readNetwork(networkId: string): Promise<NetworkState | null> {
    const { record, groups: rows } = await this.postgres.readNetwork(networkId);
    if (!record || record.deleted) return null;
    const groups = new Map(
      sortById(rows).map((row) => [row.record.group.id, assembleGroupState(row.record, row.contacts)] as const),
    );
    return { groups, rootGroupId: record.rootGroupId, currentGroupId: record.currentGroupId };
  }

  async listLiveNetworks(): Promise<string[]> {
    return (await this.postgres.listLiveNetworkIds()).sort();
  }

  /**
   * In SQL: the criteria become `jsonb` containment (`@>`) on the GIN-indexed attributes, which
   * can only admit too much (tags stored as a Set, values equal by the codec's deep equality but
   * written differently), never too little; each candidate is then checked with `groupMatches`,
   * so results equal every other backend's. Sorted by group id.
   */
  async queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]> {
    const rows = await this.postgres.readGroups(networkId, queryFilter(query));
    return sortById(rows.filter((row) => groupMatches(row.record.group, query))).map((row) =>
      assembleGroupState(row.record, row.contacts),
    );
  }
}

/** The query as `jsonb` containments, each a list of alternatives (tags may be stored as an array or a Set). */
export function queryFilter(query: GroupQuery): GroupFilter {
  return { contains: containmentOf(query) };
}

function containmentOf(query: GroupQuery): Array<Array<Record<string, unknown>>> {
  const out: Array<Array<Record<string, unknown>>> = [];
  if (query.author !== undefined) out.push([{ [AUTHOR_ATTRIBUTE]: query.author }]);
  if (query.type !== undefined) out.push([{ [TYPE_ATTRIBUTE]: query.type }]);
  if (query.tags !== undefined && query.tags.length > 0)
    out.push([{ [TAGS_ATTRIBUTE]: [...query.tags] }, { [TAGS_ATTRIBUTE]: new Set(query.tags) }]);
  for (const [key, value] of Object.entries(query.attributes ?? {})) out.push([{ [key]: value }]);
  return out;
}

function sortById(rows: GroupRow[]): GroupRow[] {
  return rows.sort((a, b) =>
    a.record.group.id < b.record.group.id ? -1 : a.record.group.id > b.record.group.id ? 1 : 0,
  );
}
