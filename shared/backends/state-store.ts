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
 * reads again and calls the update once more with the fresh record).
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
 * The persistence primitives a `DocumentStorage` is built on. Implementations store values
 * as they are given (the caller has already validated and encoded-checked them) and return
 * copies the caller may mutate. Missing things read as `null`/empty; deleting a missing thing
 * is not an error.
 */
export interface StateStore {
  init(): Promise<void>;
  close(): Promise<void>;

  getNetwork(networkId: string, options?: RecordReadOptions): Promise<NetworkRecord | null>;
  putNetwork(record: NetworkRecord): Promise<void>;
  /**
   * Read-modify-write of the network record (tombstones, revival, whole-network writes) that is
   * atomic between instances sharing the store: compare-and-set on Cloud Storage, a row lock on
   * PostgreSQL, a lock file on disk. `update` may be called again with a fresher record.
   */
  updateNetwork(networkId: string, update: NetworkUpdate): Promise<void>;
  listNetworkIds(): Promise<string[]>;
  /** Removes the network and everything under it: groups, contacts, snapshots. */
  deleteNetwork(networkId: string): Promise<void>;

  getGroup(networkId: string, groupId: string, options?: RecordReadOptions): Promise<GroupRecord | null>;
  putGroup(networkId: string, record: GroupRecord): Promise<void>;
  listGroupIds(networkId: string): Promise<string[]>;
  /** Removes the group record and its contacts. */
  deleteGroup(networkId: string, groupId: string): Promise<void>;

  getContact(networkId: string, groupId: string, contactId: string): Promise<Contact | null>;
  listContacts(networkId: string, groupId: string): Promise<Contact[]>;
  /** The contacts among `contactIds` that are stored on their own (cheaper than `listContacts` for a few of many). */
  getContacts?(networkId: string, groupId: string, contactIds: readonly string[], options?: RecordReadOptions): Promise<Contact[]>;
  putContact(networkId: string, groupId: string, contact: Contact): Promise<void>;
  /**
   * Read-modify-write of one contact that is atomic even when other processes share the store
   * (compare-and-set, retried). Stores without it are only written by one process, and
   * `DocumentStorage` serializes their writers itself.
   */
  updateContact?(networkId: string, groupId: string, contactId: string, update: ContactUpdate): Promise<void>;
  /** Compare-and-set of a group record, like `updateContact`; with `cached`, it may start from the cached copy. */
  updateGroup?(networkId: string, groupId: string, update: GroupUpdate, options?: RecordReadOptions): Promise<void>;
  deleteContact(networkId: string, groupId: string, contactId: string): Promise<void>;

  /** `payload` is the codec encoding of a `NetworkState`; snapshots are never overwritten. */
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
  putSnapshotStream?(networkId: string, info: SnapshotInfo, chunks: AsyncIterable<string>): Promise<SnapshotWrite>;
  getSnapshot(networkId: string, snapshotId: string): Promise<string | null>;
  /** The info of one complete snapshot, without reading its body; `null` when there is none. */
  getSnapshotInfo?(networkId: string, snapshotId: string): Promise<SnapshotInfo | null>;
  listSnapshots(networkId: string): Promise<SnapshotInfo[]>;
  /** False when there was no such snapshot. */
  deleteSnapshot(networkId: string, snapshotId: string): Promise<boolean>;
  /**
   * When anything of the network other than its snapshots (network record, group records,
   * contacts, deletions of them) was last written, by the store's own clock; `null` when
   * nothing of it is stored. Cheap: from metadata (mtimes, listing times), never from bodies.
   */
  lastChanged?(networkId: string): Promise<Date | null>;
}

/** What a create-only snapshot write did; `info` is the stored one (the existing one when not created). */
export interface SnapshotWrite {
  created: boolean;
  info: SnapshotInfo;
}
