import type { Group, SnapshotInfo, StoredContact as Contact, Wire } from '../model';

/** What a backend keeps about a network itself; its groups are stored separately. */
export interface NetworkRecord {
  id: string;
  rootGroupId: string;
  currentGroupId: string;
  createdAt: Date;
  updatedAt: Date;
  /** Clock stamp of the last whole-network save. */
  stamp?: string;
  /** Set when the network was deleted; the record stays as its tombstone. */
  deleted?: boolean;
  /** Stamp of the newest delete of the network: writes older than it are superseded. */
  deletedStamp?: string;
  /** Per deleted group, the stamp of its newest delete: older writes to it are superseded. */
  tombstones?: Record<string, string>;
}

/** A group's structure and wires; its contacts are stored one by one. */
export interface GroupRecord {
  group: Group;
  wires: Map<string, Wire>;
  /** Clock stamp of the last whole-group write, so an older one delivered late is skipped. */
  stamp?: string;
  /**
   * Contacts written by batched persistence, packed into the record so that a flush of many
   * writes is one object write. A contact also stored on its own is read as the newer of the two.
   */
  contacts?: Map<string, Contact>;
}

/**
 * `cached: true` lets a store answer from the copy it read or wrote last instead of asking again.
 * Only for reads whose staleness a later compare-and-set catches: a store that caches validates
 * its copy when the record is next written (`updateGroup` starts from it and, on a conflict,
 * reads again and calls the update once more with the fresh record). Stores without a cache
 * ignore it.
 */
export interface RecordReadOptions {
  cached?: boolean;
}

/** Returns the record to store, or `null` to leave the stored one as it is. */
export type NetworkUpdate = (current: NetworkRecord | null) => NetworkRecord | null;

/** Returns the record to store, or `null` to leave the stored one as it is. */
export type GroupUpdate = (current: GroupRecord | null) => GroupRecord | null;

/** Returns the contact to store, or `null` to leave the stored one as it is. */
export type ContactUpdate = (current: Contact | null) => Contact | null;

/**
 * What one `atomically` call covers: the records of one group (and the network record, through
 * `updateNetwork`), anything of one network, or a consistent read of one network.
 */
export type AtomicUnit =
  | { kind: 'group'; networkId: string; groupId: string }
  | { kind: 'network'; networkId: string }
  | { kind: 'consistent-read'; networkId: string };

/**
 * The persistence primitives a `DocumentStorage` is built on: records of networks, groups and
 * contacts, and snapshots. Every method is required; there is nothing to branch on, except the
 * optional `bulk` capability (see `BulkGroupStore`), which callers use when it is there.
 *
 * Values are stored as given (callers have validated them) and read back as copies the caller
 * may mutate. A missing thing reads as `null` (single reads) or `[]` (listings); deleting a
 * missing thing is not an error. Listings are in no particular order: callers sort. Ids are
 * matched exactly, never as prefixes: `listContacts(n, 'g')` holds nothing of group `g2`.
 *
 * **Atomicity, the one capability that differs between stores.** Each `update*` method is a
 * read-modify-write of one record that no other writer of the store can interleave with:
 * compare-and-set on the object generation, retried (Cloud Storage), a row lock (PostgreSQL),
 * no await between the read and the write (memory); on disk, a lock file for network records,
 * while group and contact files have one writing process and take turns in it.
 * Its `update` function may therefore run more than once, each time with a fresher record; a
 * store that cannot settle a conflict after its retries throws `StorageConflictError`.
 * Everything else is one write at a time, and `atomically(unit, work)` says what a store can
 * do beyond that: PostgreSQL runs `work` as one transaction holding locks on the unit (so other
 * processes wait and a failure leaves nothing half-written); the other stores run `work` as it
 * is, because the writes a `DocumentStorage` makes are ordered by clock stamp and re-done by a
 * redelivered event, so a crash between two of them is repaired, not exposed.
 */
export interface StateStore {
  /** Prepares the store (folders, tables, bucket check); called once before anything else, again after a failure. */
  init(): Promise<void>;
  /** Releases connections; the store is not used afterwards. Stored data stays. */
  close(): Promise<void>;
  /**
   * Runs `work`, in which this store's methods are called, as one unit as far as the store can
   * (see above). Nested calls join the outer unit. Resolves or rejects as `work` does.
   */
  atomically<T>(unit: AtomicUnit, work: () => Promise<T>): Promise<T>;

  /** The network's record, or `null`. A deleted network's record stays (with `deleted`) and is returned. */
  getNetwork(networkId: string, options?: RecordReadOptions): Promise<NetworkRecord | null>;
  /** Writes the record, replacing the stored one. */
  putNetwork(record: NetworkRecord): Promise<void>;
  /** Atomic read-modify-write of the network record (tombstones, revival, whole-network writes); `update` may run more than once. */
  updateNetwork(networkId: string, update: NetworkUpdate): Promise<void>;
  /** Ids of every network with a record, deleted ones (tombstones) included. */
  listNetworkIds(): Promise<string[]>;
  /** Removes the network and everything under it: record, groups, contacts, snapshots. */
  deleteNetwork(networkId: string): Promise<void>;

  /** The group's record, or `null` (also when the network is missing). */
  getGroup(networkId: string, groupId: string, options?: RecordReadOptions): Promise<GroupRecord | null>;
  /** Writes the record, replacing the stored one; the network's record must exist. */
  putGroup(networkId: string, record: GroupRecord): Promise<void>;
  /** Ids of the network's groups; a store may list a group that has contacts but no record yet (callers read it as absent). */
  listGroupIds(networkId: string): Promise<string[]>;
  /** Removes the group record and its contacts stored one by one. */
  deleteGroup(networkId: string, groupId: string): Promise<void>;
  /** Atomic read-modify-write of a group record, like `updateNetwork`; with `cached`, it may start from the cached copy. */
  updateGroup(networkId: string, groupId: string, update: GroupUpdate, options?: RecordReadOptions): Promise<void>;

  /** A contact stored on its own (not packed into its group record), or `null`. */
  getContact(networkId: string, groupId: string, contactId: string): Promise<Contact | null>;
  /** Every contact of the group stored on its own; `[]` for a missing group. */
  listContacts(networkId: string, groupId: string): Promise<Contact[]>;
  /** Of `contactIds`, the contacts stored on their own (ids not stored are left out); `[]` for none asked. */
  getContacts(
    networkId: string,
    groupId: string,
    contactIds: readonly string[],
    options?: RecordReadOptions,
  ): Promise<Contact[]>;
  /** Writes the contact on its own, replacing the stored one. */
  putContact(networkId: string, groupId: string, contact: Contact): Promise<void>;
  /** Atomic read-modify-write of one contact stored on its own, like `updateNetwork`. */
  updateContact(networkId: string, groupId: string, contactId: string, update: ContactUpdate): Promise<void>;
  deleteContact(networkId: string, groupId: string, contactId: string): Promise<void>;

  /** Writes a whole snapshot at once under a fresh id (`payload` is the codec encoding of a `NetworkState`); for a create-only write use `putSnapshotStream`. */
  putSnapshot(networkId: string, info: SnapshotInfo, payload: string): Promise<void>;
  /**
   * Writes a snapshot whose body arrives in pieces (the codec encoding of a `NetworkState`,
   * UTF-8), pulling the next piece only when the last one is written, so a large network never
   * sits in memory whole. Create-only: the body is written only when no body of that id exists,
   * then the info with `size` and `sha256` of the body bytes filled in. When the id is taken,
   * `chunks` is abandoned and the existing snapshot is reported (`created: false`); a body left
   * without its info (a crash or a racing writer) is adopted: its info is written from its bytes.
   * Once the body write has begun a failure is not retried here (the pieces cannot be replayed);
   * the caller may run the whole snapshot again with the same id.
   */
  putSnapshotStream(networkId: string, info: SnapshotInfo, chunks: AsyncIterable<string>): Promise<SnapshotWrite>;
  /** The body of a complete snapshot, or `null`. */
  getSnapshot(networkId: string, snapshotId: string): Promise<string | null>;
  /** The info of one complete snapshot, without reading its body; `null` when there is none. */
  getSnapshotInfo(networkId: string, snapshotId: string): Promise<SnapshotInfo | null>;
  /** Infos of the network's complete snapshots, in no particular order; `[]` for a missing network. */
  listSnapshots(networkId: string): Promise<SnapshotInfo[]>;
  /** False when there was no such snapshot. */
  deleteSnapshot(networkId: string, snapshotId: string): Promise<boolean>;
  /**
   * When anything of the network other than its snapshots (network record, group records,
   * contacts, deletions of them) was last written, by the store's own clock; `null` when
   * nothing of it is stored. Cheap: from metadata (mtimes, listing times), never from bodies.
   */
  lastChanged(networkId: string): Promise<Date | null>;
  /** Optional: many groups read or written in a few requests (PostgreSQL); absent where single-record methods are as cheap. */
  readonly bulk?: BulkGroupStore;
}

/** A group as a bulk read returns it: its record (`null` while it has contacts but no record yet) and its contacts stored one by one. */
export interface StoredGroup {
  record: GroupRecord | null;
  contacts: Contact[];
}

/** One group's part of `writeGroups`: its new record, the contacts it stores one by one (replacing them) and those it removes. */
export interface GroupWrite {
  record: GroupRecord;
  putContacts: Contact[];
  deleteContactIds: string[];
}

/**
 * Many groups at once, what whole-network saves, snapshots and concurrent group saves need at
 * scale: the same effect as the single-record methods (`getGroup` with `listContacts`; `putContact`,
 * `putGroup`, `deleteContact`) in a few requests. Inside an `atomically` unit they join it.
 */
export interface BulkGroupStore {
  /**
   * Of `groupIds` (every group of the network when absent), those stored with a record or with
   * contacts, by id; a missing network reads as an empty map.
   */
  readGroups(networkId: string, groupIds?: readonly string[]): Promise<Map<string, StoredGroup>>;
  /** Applies every write as one unit (all or nothing); group ids are distinct. The network's record must exist. */
  writeGroups(networkId: string, writes: readonly GroupWrite[]): Promise<void>;
}

/** What a create-only snapshot write did; `info` is the stored one (the existing one when not created). */
export interface SnapshotWrite {
  created: boolean;
  info: SnapshotInfo;
}
