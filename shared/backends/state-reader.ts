import type { GroupQuery, GroupState, NetworkState } from '../model';
import { groupMatches } from '../query';
import { readGroupRecords, readGroupState } from './group-records';
import type { NetworkRecord, StateStore } from './state-store';

/**
 * How a `DocumentStorage` reads whole groups and networks. Ids and queries arrive validated and
 * the store open. Contacts come as the contract has them (no blend bookkeeping), a contact stored
 * both packed and on its own as the newer copy.
 */
export interface StateReader {
  /** The group, or `null` when it has no record. */
  readGroup(networkId: string, groupId: string): Promise<GroupState | null>;
  /** The network with its groups by id in ascending order; `null` when missing or deleted. */
  readNetwork(networkId: string): Promise<NetworkState | null>;
  /** Ids of the networks that exist and are not deleted, ascending. */
  listLiveNetworks(): Promise<string[]>;
  /** The groups matching `query` (see `groupMatches`); `[]` for a missing network. */
  queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]>;
}

/** A `StateReader` made of the store's single-record reads; what every store can do. */
export class StoreStateReader implements StateReader {
  constructor(private readonly store: StateStore) {}

  readGroup(networkId: string, groupId: string): Promise<GroupState | null> {
    return readGroupState(this.store, networkId, groupId);
  }

  async readNetwork(networkId: string): Promise<NetworkState | null> {
    const record = await this.store.getNetwork(networkId);
    if (!record || record.deleted) return null;
    const groups = new Map<string, GroupState>();
    for (const groupId of (await this.store.listGroupIds(networkId)).sort()) {
      const state = await this.readGroup(networkId, groupId);
      if (state) groups.set(groupId, state);
    }
    return { groups, rootGroupId: record.rootGroupId, currentGroupId: record.currentGroupId };
  }

  async listLiveNetworks(): Promise<string[]> {
    const ids = await this.store.listNetworkIds();
    const records = await Promise.all(ids.map((id) => this.store.getNetwork(id)));
    return records
      .filter((r): r is NetworkRecord => r !== null && !r.deleted)
      .map((r) => r.id)
      .sort();
  }

  async queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]> {
    const records = await readGroupRecords(this.store, networkId);
    const matching = [...records.values()].filter((record) => groupMatches(record.group, query));
    const states = await Promise.all(matching.map((record) => this.readGroup(networkId, record.group.id)));
    return states.filter((s): s is GroupState => s !== null);
  }
}
