import type { BlendMode, GroupChangeKind, GroupState, NetworkState } from '../model';

/** CloudEvents `type` values; the suffix is the schema version of `data`. */
export const EventType = {
  ContactWritten: 'dev.superspine.contact.written.v1',
  /** Several writes of one writer to one group, gathered while an earlier publish was in flight. */
  ContactsWritten: 'dev.superspine.contacts.written.v1',
  GroupSaved: 'dev.superspine.group.saved.v1',
  GroupDeleted: 'dev.superspine.group.deleted.v1',
  NetworkSaved: 'dev.superspine.network.saved.v1',
  NetworkDeleted: 'dev.superspine.network.deleted.v1',
  SnapshotRequested: 'dev.superspine.snapshot.requested.v1',
  GroupChanged: 'dev.superspine.group.changed.v1',
  NetworkChanged: 'dev.superspine.network.changed.v1',
  FlushRequested: 'dev.superspine.flush.requested.v1',
} as const;

export type EventTypeName = (typeof EventType)[keyof typeof EventType];

/**
 * Who wrote, in what order: the writer's clock stamp and sequence number. Contact writes are
 * numbered per contact (each write to a contact once), other writes per writer.
 */
export interface WriteOrigin {
  writerId: string;
  seq: number;
  stamp: string;
}

/** Content too large for an event is stored once by hash; the event carries this instead. */
export interface ContentReference {
  /** Object name of the content in the state bucket. */
  object: string;
  sha256: string;
  size: number;
}

export interface ContactWrittenData extends WriteOrigin {
  networkId: string;
  groupId: string;
  contactId: string;
  content?: unknown;
  contentRef?: ContentReference;
  blendMode?: BlendMode;
}

/** One write inside a `contacts.written` bundle: a contact write without the ids the bundle holds. */
export interface BundledContactWrite {
  /** Names this write in acknowledgements (`causes`), as the event id names a lone write. */
  id: string;
  contactId: string;
  content?: unknown;
  contentRef?: ContentReference;
  blendMode?: BlendMode;
  /** The writer's own sequence number and clock stamp for this write. */
  seq: number;
  stamp: string;
}

/** Most writes one `contacts.written` bundle may carry. */
export const MAX_BUNDLED_WRITES = 10_000;

/** A bundle of one writer's contact writes to one group; each write keeps its own `(writerId, seq)`. */
export interface ContactsWrittenData {
  networkId: string;
  groupId: string;
  writerId: string;
  writes: BundledContactWrite[];
}

export interface GroupSavedData extends WriteOrigin {
  networkId: string;
  groupId: string;
  /** Exactly one of `state` and `stateRef`. */
  state?: GroupState;
  stateRef?: ContentReference;
}

export interface GroupDeletedData extends WriteOrigin {
  networkId: string;
  groupId: string;
}

export interface NetworkSavedData extends WriteOrigin {
  networkId: string;
  /** Exactly one of `state` and `stateRef`. */
  state?: NetworkState;
  stateRef?: ContentReference;
}

export interface NetworkDeletedData extends WriteOrigin {
  networkId: string;
}

export interface SnapshotRequestedData {
  networkId: string;
  label?: string;
  /** Chosen by the requester so it can wait for this snapshot, and so a repeat makes no second one. */
  snapshotId: string;
  requestedBy: string;
}

export interface GroupChangedData {
  networkId: string;
  groupId: string;
  kind: GroupChangeKind;
  /** The event that caused the change. */
  causeId: string;
  /** The group after the change; absent when deleted or too large to carry. */
  state?: GroupState;
  /** Writer of the cause, so a writer can wait for its own writes. */
  writerId?: string;
  /** True when the cause was already applied (a redelivery) or lost to a newer write. */
  unchanged?: boolean;
  /**
   * Every write the change covers, when it is more than its cause: the writes of a bundle (one
   * writer, `writerId` set) or of a batched flush (many writers).
   */
  causes?: Array<{ eventId: string; writerId: string }>;
}

/** Asks for pending batched writes of a network to be persisted now (`interval` and `manual` modes). */
export interface FlushRequestedData {
  networkId: string;
  requestedBy: string;
}

/** Announces that a network-level write was applied; also the acknowledgement of one. */
export interface NetworkChangedData {
  networkId: string;
  kind: GroupChangeKind;
  causeId: string;
  writerId?: string;
  unchanged?: boolean;
}

export interface EventDataByType {
  [EventType.ContactWritten]: ContactWrittenData;
  [EventType.ContactsWritten]: ContactsWrittenData;
  [EventType.GroupSaved]: GroupSavedData;
  [EventType.GroupDeleted]: GroupDeletedData;
  [EventType.NetworkSaved]: NetworkSavedData;
  [EventType.NetworkDeleted]: NetworkDeletedData;
  [EventType.SnapshotRequested]: SnapshotRequestedData;
  [EventType.GroupChanged]: GroupChangedData;
  [EventType.NetworkChanged]: NetworkChangedData;
  [EventType.FlushRequested]: FlushRequestedData;
}

/** A CloudEvents 1.0 envelope (structured mode) around one of Super Spine's event payloads. */
export interface SpineEvent<T extends EventTypeName = EventTypeName> {
  specversion: '1.0';
  id: string;
  source: string;
  type: T;
  time: string;
  datacontenttype: 'application/json';
  /** `network/group` or `network`: what the event is about. */
  subject: string;
  data: EventDataByType[T];
}

export type AnySpineEvent = { [K in EventTypeName]: SpineEvent<K> }[EventTypeName];
