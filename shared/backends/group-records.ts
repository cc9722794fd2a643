import { compareStamps } from '../hlc';
import type { Contact, GroupState, NetworkState, StoredContact } from '../model';
import type { GroupRecord, StateStore } from './state-store';

/** A `GroupState` with no contacts or wires, as a contact write creates it. */
export function emptyGroupState(groupId: string, name = groupId): GroupState {
  return {
    group: { id: groupId, name, contactIds: [], wireIds: [], subgroupIds: [], boundaryContactIds: [] },
    contacts: new Map(),
    wires: new Map(),
  };
}

export function emptyRecord(groupId: string): GroupRecord {
  const { group, wires } = emptyGroupState(groupId);
  return { group, wires };
}

/**
 * A group's state from its record and its contacts stored one by one, as `loadGroupState` reads
 * it: the newer copy of a contact stored both packed and alone, in the record's order. For stores
 * that read a group in one request of their own.
 */
export function assembleGroupState(record: GroupRecord, singleContacts: Iterable<StoredContact>): GroupState {
  const singles = new Map([...singleContacts].map((c) => [c.id, c] as const));
  const byId = mergeContacts(record.contacts, singles);
  const order = mergeIds(record.group.contactIds, [...byId.keys()].sort());
  const contacts = new Map<string, Contact>();
  for (const id of order) {
    const contact = byId.get(id);
    if (contact) contacts.set(id, publicContact(contact));
  }
  return { group: { ...record.group, contactIds: order }, contacts, wires: record.wires };
}

/** The group as `loadGroupState` returns it, read from the store: its record, then its contacts; `null` without a record. */
export async function readGroupState(
  store: StateStore,
  networkId: string,
  groupId: string,
): Promise<GroupState | null> {
  const record = await store.getGroup(networkId, groupId);
  if (!record) return null;
  return assembleGroupState(record, await store.listContacts(networkId, groupId));
}

/** The network's group records by id (listed groups without a record left out). */
export async function readGroupRecords(store: StateStore, networkId: string): Promise<Map<string, GroupRecord>> {
  const ids = await store.listGroupIds(networkId);
  const records = await Promise.all(ids.map((id) => store.getGroup(networkId, id)));
  return new Map(records.filter((r): r is GroupRecord => r !== null).map((r) => [r.group.id, r] as const));
}

/** A stored contact as the contract has it: without the blend bookkeeping. */
export function publicContact(contact: StoredContact): Contact {
  const { version: _bookkeeping, ...rest } = contact;
  return rest;
}

/** A network state with every contact as the contract has it (snapshots written before loads left out the bookkeeping carry it). */
export function publicNetworkState(state: NetworkState): NetworkState {
  for (const group of state.groups.values()) {
    for (const [id, contact] of group.contacts) group.contacts.set(id, publicContact(contact));
  }
  return state;
}

/** The newer of two copies of a contact by clock stamp (a copy without a stamp is the older). */
export function newestContact(a: StoredContact | null, b: StoredContact | null): StoredContact | null {
  if (!a || !b) return a ?? b;
  const stampA = a.version?.stamp;
  const stampB = b.version?.stamp;
  if (stampA === undefined) return b;
  if (stampB === undefined) return a;
  const byStamp = compareStamps(stampA, stampB);
  if (byStamp !== 0) return byStamp > 0 ? a : b;
  // A write older than the newest (a merge delivered late) leaves the stamp as it was: the copy
  // that applied more writes is the later one (each copy is the other plus writes).
  return appliedCount(a) >= appliedCount(b) ? a : b;
}

function appliedCount(contact: StoredContact): number {
  let count = 0;
  for (const entry of Object.values(contact.version?.applied ?? {})) count += entry.upTo + entry.beyond.length;
  return count;
}

/** Packed and single contacts of a group, the newer copy where both exist. */
export function mergeContacts(
  packed: Map<string, StoredContact> | undefined,
  singles: Map<string, StoredContact>,
): Map<string, StoredContact> {
  const out = new Map(singles);
  for (const [id, contact] of packed ?? []) out.set(id, newestContact(contact, out.get(id) ?? null)!);
  return out;
}

export function mergeIds(first: Iterable<string>, second: Iterable<string>): string[] {
  const out = [...first];
  const seen = new Set(out);
  for (const id of second) {
    if (seen.has(id)) continue;
    out.push(id);
    seen.add(id);
  }
  return out;
}
