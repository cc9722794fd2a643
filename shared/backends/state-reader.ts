import type { GroupQuery, GroupState, NetworkState } from '../model';
import { groupMatches } from '../query';
import { mapWithConcurrency } from '../util/concurrency';
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

export interface StoreStateReaderOptions {
  /**
   * Groups read at once for a network load (default 1). A remote store, where each read is a
   * round trip, wants several.
   */
  concurrency?: number;
}

/** A `StateReader` made of the store's single-record reads; what every store can do. */
export class StoreStateReader implements StateReader {
  protected readonly concurrency: number;

  constructor(
    protected readonly store: StateStore,
    options: StoreStateReaderOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 1;
  }

  readGroup(networkId: string, groupId: string): Promise<GroupState | null> {
    return readGroupState(this.store, networkId, groupId);
  }

  async readNetwork(networkId: string): Promise<NetworkState | null> {
    const record = await this.store.getNetwork(networkId);
    if (!record || record.deleted) return null;
    const ids = (await this.store.listGroupIds(networkId)).sort();
    const states = await mapWithConcurrency(ids, this.concurrency, (groupId) => this.readGroup(networkId, groupId));
    const groups = new Map<string, GroupState>();
    ids.forEach((groupId, i) => {
      if (states[i]) groups.set(groupId, states[i]);
    });
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
