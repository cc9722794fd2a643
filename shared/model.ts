/**
 * The storage contract of Bassline propagation networks, as every Super Spine backend
 * implements it: plain string ids, plain promises, `Map`s in group and network state.
 */

export type BlendMode = 'accept-last' | 'merge';
export type WireType = 'bidirectional' | 'directed';
export type BoundaryDirection = 'input' | 'output';

export interface Contradiction {
  message: string;
  /** The current value and the value that could not be merged into it. */
  values: unknown[];
  /** Milliseconds since the epoch. */
  timestamp: number;
}

/** Bookkeeping that makes blending idempotent and order-independent; written by the blend rules. */
export interface ContactVersion {
  /** Hybrid-logical-clock stamp of the newest write applied (see `hlc.ts`). */
  stamp: string;
  /** Events already applied, per writer, so a redelivered event is not applied twice. */
  applied: AppliedLog;
  /**
   * Merge writes stamped after the group's last whole-group operation (save, delete, network
   * save or delete, restore), oldest stamp first: a whole-group operation delivered late, but
   * older than some of them, replaces what came before it and these are merged again on top.
   * Folded into `base` once older than the reorder window (`APPLIED_LOG_HORIZON_MS`).
   */
  merges?: LoggedMerge[];
  /** With `merges`: the contact before them (`null`: it did not exist), so they can be replayed in stamp order. */
  base?: Contact | null;
}

/** One merge write kept in a contact's `version.merges`. */
export interface LoggedMerge {
  stamp: string;
  writerId: string;
  seq: number;
  content: unknown;
}

/**
 * Per writer: every sequence number up to `upTo` was applied, plus the ones in `beyond`; `at`:
 * when (ms, the applying process's clock) its newest write was applied. Entries idle for longer
 * than Pub/Sub can redeliver are dropped (see `APPLIED_LOG_HORIZON_MS`).
 */
export type AppliedLog = Record<string, { upTo: number; beyond: number[]; at?: number }>;

export interface Contact {
  id: string;
  groupId: string;
  content?: unknown;
  blendMode: BlendMode;
  name?: string;
  isBoundary?: boolean;
  boundaryDirection?: BoundaryDirection;
  attributes?: Record<string, unknown>;
  lastContradiction?: Contradiction;
}

/**
 * A contact as backends keep it: with the blend bookkeeping that no caller writes or reads.
 * Loads return `Contact` without it; saves never take it from their input.
 */
export interface StoredContact extends Contact {
  version?: ContactVersion;
}

export interface Wire {
  id: string;
  groupId: string;
  fromId: string;
  toId: string;
  type: WireType;
}

export interface Group {
  id: string;
  name: string;
  parentId?: string;
  contactIds: string[];
  wireIds: string[];
  subgroupIds: string[];
  boundaryContactIds: string[];
  attributes?: Record<string, unknown>;
}

export interface GroupState {
  group: Group;
  contacts: Map<string, Contact>;
  wires: Map<string, Wire>;
}

export interface NetworkState {
  groups: Map<string, GroupState>;
  currentGroupId: string;
  rootGroupId: string;
}

export interface SnapshotInfo {
  id: string;
  networkId: string;
  label?: string;
  createdAt: Date;
  /** Encoded size in bytes. */
  size?: number;
  /** SHA-256 of the encoded snapshot bytes, hex; lets a copy be checked without trusting its store. */
  sha256?: string;
}

/**
 * `author`, `type` and `tags` match the group attributes `bassline.author`, `bassline.type`
 * and `bassline.tags` (a group matches when it carries every tag asked for); `attributes`
 * match by deep equality on each key given. All given criteria must hold.
 */
export interface GroupQuery {
  attributes?: Record<string, unknown>;
  author?: string;
  tags?: string[];
  type?: string;
}

export type GroupChangeKind = 'updated' | 'deleted';

export interface GroupChange {
  networkId: string;
  groupId: string;
  /** `networkId/groupId`, what subscription paths are matched against. */
  path: string;
  kind: GroupChangeKind;
  time: Date;
  /**
   * The writes the change covers (event ids; a bundled write's own id), when the storage knows
   * them (SpineStorage and RemoteStorage do): what a catch-up subscription de-duplicates by.
   */
  eventIds?: string[];
}

/** Options of a catch-up subscription (SpineStorage, RemoteStorage). */
export interface SubscribeOptions {
  /**
   * Deliver every change after this time (a Date or an ISO 8601 string) from the event archive
   * first, then continue live. Refused (code `INVALID_ARGUMENT`) in the future or before the
   * archive begins.
   */
  since?: Date | string;
}

/**
 * Called with the group's state as of delivery (at least as new as the change; quick successive
 * changes may arrive as one state), or `null` when the group was deleted.
 */
export type SubscriptionCallback = (state: GroupState | null, change: GroupChange) => void | Promise<void>;

export type Unsubscribe = () => Promise<void>;

export interface ContactWriteOptions {
  /** Blend mode for a contact that does not exist yet; an existing contact keeps its own. */
  blendMode?: BlendMode;
}

export interface SyncResult {
  networks: number;
  groups: number;
}

export interface NetworkStorage {
  /** Blends `content` into the contact by its blend mode; creates network, group and contact when missing. */
  saveContactContent(
    networkId: string,
    groupId: string,
    contactId: string,
    content: unknown,
    options?: ContactWriteOptions,
  ): Promise<void>;
  /** The contact's content, or `null` when the contact (or its group or network) does not exist. */
  loadContactContent(networkId: string, groupId: string, contactId: string): Promise<unknown | null>;

  /** Replaces the group: contacts and wires not in `state` are removed. Creates the network when missing. */
  saveGroupState(networkId: string, groupId: string, state: GroupState): Promise<void>;
  loadGroupState(networkId: string, groupId: string): Promise<GroupState | null>;
  /** Removes the group, its contacts and wires, and its descendant groups. Missing groups are ignored. */
  deleteGroup(networkId: string, groupId: string): Promise<void>;

  /** Replaces the network: groups not in `state` are removed. */
  saveNetworkState(networkId: string, state: NetworkState): Promise<void>;
  loadNetworkState(networkId: string): Promise<NetworkState | null>;
  listNetworks(): Promise<string[]>;
  /** Removes the network with its groups, contacts and snapshots. Missing networks are ignored. */
  deleteNetwork(networkId: string): Promise<void>;
  exists(networkId: string): Promise<boolean>;

  queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]>;

  /** Stores an immutable copy of the network; throws `NetworkNotFoundError` for an unknown network. */
  saveSnapshot(networkId: string, label?: string): Promise<string>;
  /** Throws `SnapshotNotFoundError` for an unknown snapshot. */
  loadSnapshot(networkId: string, snapshotId: string): Promise<NetworkState>;
  /** Newest first. */
  listSnapshots(networkId: string): Promise<SnapshotInfo[]>;
  /** Throws `SnapshotNotFoundError` for an unknown snapshot. */
  deleteSnapshot(networkId: string, snapshotId: string): Promise<void>;

  /**
   * Calls back on every change of a group whose path (`network/group`) equals `path` or lies
   * below it segment-wise: `netA/users` matches `netA/users` and `netA/users/@alice`, not `netA/usersX`.
   * Resolves once the subscription is active.
   */
  subscribe(path: string, callback: SubscriptionCallback): Promise<Unsubscribe>;
  /** Copies every network of `remote` into this storage. */
  sync(remote: NetworkStorage): Promise<SyncResult>;

  initialize(): Promise<void>;
  close(): Promise<void>;
}
