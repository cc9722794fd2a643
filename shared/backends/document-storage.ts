import { createHash, randomUUID } from 'node:crypto';
import { applyContactWrite, rebaseContact, type BlendOutcome, type ContactWrite } from '../blend';
import { clone, decode } from '../codec';
import { InvalidArgumentError, NetworkNotFoundError, SnapshotNotFoundError, StorageClosedError } from '../errors';
import { compareStamps, HybridLogicalClock, isStamp, parseStamp } from '../hlc';
import { changePath, parsePath, pathMatches, validateContactId, validateGroupId, validateNetworkId, validateSnapshotId, validateWriterId, type ParsedPath } from '../ids';
import { createLogger, type Logger } from '../log';
import type {
  Contact,
  StoredContact,
  ContactWriteOptions,
  GroupChange,
  GroupChangeKind,
  GroupQuery,
  GroupState,
  NetworkState,
  NetworkStorage,
  SnapshotInfo,
  SubscriptionCallback,
  SyncResult,
  Unsubscribe,
} from '../model';
import { ContactSequences } from '../contact-sequences';
import { groupMatches } from '../query';
import { newSnapshotId } from '../snapshot-id';
import { checkBlendMode, checkContent, DEFAULT_MAX_CONTENT_BYTES, validateGroupState, validateNetworkState, validateQuery } from '../state-validation';
import { KeyedMutex, KeyedReadWriteLock } from '../util/locks';
import type { WriteOrigin } from '../events/types';
import {
  DEFAULT_CHANGE_TOLERANCE_MS,
  encodeNetworkStateChunks,
  SNAPSHOT_READ_AHEAD,
  type SaveSnapshotOptions,
  type SnapshotIfChangedOptions,
} from './snapshot-stream';
import type { ContactUpdate, GroupRecord, GroupUpdate, NetworkRecord, RecordReadOptions, SnapshotWrite, StateStore } from './state-store';
import { copyNetworks } from '../sync';

export interface DocumentStorageOptions {
  /** Identifies this instance's writes in clock stamps; random by default. */
  writerId?: string;
  /** Largest encoded contact content accepted, in bytes (default 10 MiB). */
  maxContentBytes?: number;
  logger?: Logger;
}

interface Subscription {
  path: ParsedPath;
  callback: SubscriptionCallback;
  delivery: Promise<void>;
}

/** A `GroupState` with no contacts or wires, as a contact write creates it. */
export function emptyGroupState(groupId: string, name = groupId): GroupState {
  return {
    group: { id: groupId, name, contactIds: [], wireIds: [], subgroupIds: [], boundaryContactIds: [] },
    contacts: new Map(),
    wires: new Map(),
  };
}

/**
 * `NetworkStorage` over a `StateStore`: the blend semantics, validation, cascading deletes,
 * snapshots, queries and in-process subscriptions live here once, for every backend.
 * Writes to one group are serialized in this process; network-wide writes exclude them.
 */
export class DocumentStorage implements NetworkStorage {
  readonly writerId: string;
  protected readonly maxContentBytes: number;
  protected readonly log: Logger;
  private readonly clock: HybridLogicalClock;
  private sequence = 0;
  private readonly contactSequences = new ContactSequences();
  private readonly groupLocks = new KeyedMutex();
  private readonly networkLocks = new KeyedReadWriteLock();
  private readonly subscriptions = new Set<Subscription>();
  private ready: Promise<void> | undefined;
  private closed = false;

  constructor(
    protected readonly store: StateStore,
    options: DocumentStorageOptions = {},
  ) {
    this.writerId = validateWriterId(options.writerId ?? `storage-${randomUUID().slice(0, 8)}`);
    this.maxContentBytes = options.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES;
    this.log = options.logger ?? createLogger('storage');
    this.clock = new HybridLogicalClock(this.writerId);
  }

  /** Sets the store up once; a failed set-up (a store not reachable yet) is tried again by the next call. */
  initialize(): Promise<void> {
    this.ready ??= this.store.init().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriptions.clear();
    await this.store.close();
  }

  // ---- contacts

  async saveContactContent(networkId: string, groupId: string, contactId: string, content: unknown, options: ContactWriteOptions = {}): Promise<void> {
    this.checkIds(networkId, groupId, contactId);
    checkBlendMode(options.blendMode);
    checkContent(content, this.maxContentBytes, `content of contact ${JSON.stringify(contactId)}`);
    const write: ContactWrite = { content: clone(content), ...this.nextOrigin(), seq: this.contactSequences.next(networkId, groupId, contactId), blendMode: options.blendMode };
    await this.applyContactWrite(networkId, groupId, contactId, write);
  }

  /**
   * Applies a stamped write from any writer, at most once per `(writerId, seq)`. This is how
   * the mesh materializes contact-write events; `saveContactContent` stamps its own.
   */
  async applyContactWrite(networkId: string, groupId: string, contactId: string, write: ContactWrite): Promise<BlendOutcome> {
    this.checkIds(networkId, groupId, contactId);
    this.checkOrigin(write);
    await this.open('applyContactWrite');
    this.clock.observe(write.stamp);
    const outcome = await this.networkLocks.read(networkId, () =>
      this.groupLocks.run(changePath(networkId, groupId), async () => {
        const admitted = await this.admitGroupWrite(networkId, groupId, write.stamp, { create: true });
        if (!admitted) return supersededOutcome(contactId, groupId, write);
        const group = admitted.group;
        if (replacedByGroupOperation(group, write.stamp)) return supersededOutcome(contactId, groupId, write);
        let result: BlendOutcome | undefined;
        const packed = group.contacts?.get(contactId) ?? null;
        await this.updateContact(networkId, groupId, contactId, (stored) => {
          const current = newestContact(stored, packed);
          result = applyContactWrite(current, { contactId, groupId }, write);
          const worthWriting = !result.duplicate && (result.contentChanged || result.contradiction || result.contact.blendMode === 'merge' || stored === null);
          return worthWriting ? result.contact : null;
        });
        return result!;
      }),
    );
    if (outcome.contentChanged || outcome.contradiction) this.notify(networkId, groupId, 'updated');
    return outcome;
  }

  async loadContactContent(networkId: string, groupId: string, contactId: string): Promise<unknown | null> {
    this.checkIds(networkId, groupId, contactId);
    await this.open('loadContactContent');
    const [stored, record] = await Promise.all([this.store.getContact(networkId, groupId, contactId), this.store.getGroup(networkId, groupId)]);
    return newestContact(stored, record?.contacts?.get(contactId) ?? null)?.content ?? null;
  }

  /**
   * Applies many stamped writes to one group with a single write of the group record, in clock
   * order, each at most once: how the mesh applies a bundle of writes and how batched persistence
   * flushes a window. Writes superseded by a newer delete are skipped. Returns an outcome per
   * write, in the order given.
   *
   * The network and group records may come from the store's cache: the group record's
   * compare-and-set catches a stale copy (another instance wrote or deleted the group), and then
   * the writes are admitted again from fresh reads.
   */
  async applyContactWriteBatch(networkId: string, groupId: string, writes: Array<{ contactId: string; write: ContactWrite }>): Promise<BlendOutcome[]> {
    this.checkIds(networkId, groupId);
    for (const { contactId, write } of writes) {
      validateContactId(contactId);
      this.checkOrigin(write);
    }
    await this.open('applyContactWriteBatch');
    if (writes.length === 0) return [];
    for (const { write } of writes) this.clock.observe(write.stamp);
    const order = writes.map((w, index) => ({ ...w, index })).sort((a, b) => compareStamps(a.write.stamp, b.write.stamp));
    const newestStamp = order[order.length - 1]!.write.stamp;
    const contactIds = [...new Set(writes.map((w) => w.contactId))];
    const outcomes = await this.networkLocks.read(networkId, () =>
      this.groupLocks.run(changePath(networkId, groupId), async () => {
        for (let cached = true; ; cached = false) {
          const results = new Array<BlendOutcome>(writes.length);
          const admitted = await this.admitGroupWrite(networkId, groupId, newestStamp, { create: false, cached });
          // Superseded as of the newest write means superseded for all of them.
          if (!admitted) return writes.map(({ contactId, write }) => supersededOutcome(contactId, groupId, write));
          const { network } = admitted;
          const singles = new Map((await this.readSingleContacts(networkId, groupId, contactIds, { cached })).map((c) => [c.id, c] as const));
          let calls = 0;
          let stale = false;
          await this.updateGroup(
            networkId,
            groupId,
            (stored) => {
              // Called again: the cached record was stale, so the admission may be too.
              if (cached && ++calls > 1) {
                stale = true;
                return null;
              }
              const record: GroupRecord = stored ?? admitted.group;
              const contacts = new Map(record.contacts ?? []);
              let changed = false;
              for (const { contactId, write, index } of order) {
                const current = newestContact(contacts.get(contactId) ?? null, singles.get(contactId) ?? null);
                if (supersededByDelete(network, groupId, write.stamp) || replacedByGroupOperation(record, write.stamp)) {
                  results[index] = supersededOutcome(contactId, groupId, write);
                  continue;
                }
                const outcome = applyContactWrite(current, { contactId, groupId }, write);
                results[index] = outcome;
                if (!outcome.duplicate) {
                  contacts.set(contactId, outcome.contact);
                  changed = true;
                }
              }
              return changed ? { ...record, contacts } : null;
            },
            { cached },
          );
          if (!stale) return results;
        }
      }),
    );
    if (outcomes.some((o) => o.contentChanged || o.contradiction)) this.notify(networkId, groupId, 'updated');
    return outcomes;
  }

  /**
   * Applies the contact writes one event of the mesh carries: several (a bundle) as one group
   * write with `applyContactWriteBatch`, a lone write as this backend stores it best, here on
   * its own contact with `applyContactWrite`. Returns an outcome per write, in the order given.
   */
  async applyContactWrites(networkId: string, groupId: string, writes: Array<{ contactId: string; write: ContactWrite }>): Promise<BlendOutcome[]> {
    if (writes.length === 1) return [await this.applyContactWrite(networkId, groupId, writes[0]!.contactId, writes[0]!.write)];
    return this.applyContactWriteBatch(networkId, groupId, writes);
  }

  // ---- groups

  async saveGroupState(networkId: string, groupId: string, state: GroupState): Promise<void> {
    await this.applyGroupSave(networkId, groupId, state, this.nextOrigin());
  }

  /**
   * Replaces a group as of `origin.stamp`. A save older than the group's last whole-group
   * operation is skipped; what was written to contacts after the save (newer stamps) stays on top
   * of it (see `rebaseContact`). Returns false when skipped.
   */
  async applyGroupSave(networkId: string, groupId: string, state: GroupState, origin: WriteOrigin): Promise<boolean> {
    this.checkIds(networkId, groupId);
    this.checkOrigin(origin);
    validateGroupState(groupId, state, this.maxContentBytes);
    const copy = clone(state);
    await this.open('saveGroupState');
    this.clock.observe(origin.stamp);
    const applied = await this.networkLocks.read(networkId, () =>
      this.groupLocks.run(changePath(networkId, groupId), async () => {
        const admitted = await this.admitGroupWrite(networkId, groupId, origin.stamp, { create: false, parentId: copy.group.parentId });
        if (!admitted) return false;
        return this.writeGroup(networkId, groupId, copy, origin.stamp);
      }),
    );
    if (applied) this.notify(networkId, groupId, 'updated');
    else await this.cascadeAncestorDelete(networkId, groupId, copy.group.parentId, origin.stamp);
    return applied;
  }

  /**
   * A save refused because an ancestor was deleted later: the group is deleted as of that
   * delete too, with the descendants that arrived before it (saves of one group tree travel
   * under different ordering keys, so a grandchild may come before its parent).
   */
  private async cascadeAncestorDelete(networkId: string, groupId: string, parentId: string | undefined, saveStamp: string): Promise<void> {
    if (parentId === undefined) return;
    const removed = await this.networkLocks.write(networkId, async () => {
      const network = await this.store.getNetwork(networkId);
      const records = await this.readGroupRecords(networkId);
      let deleteStamp: string | undefined;
      const visited = new Set<string>([groupId]);
      for (let parent: string | undefined = parentId; parent !== undefined && !visited.has(parent); parent = records.get(parent)?.group.parentId) {
        visited.add(parent);
        const tombstone = network?.tombstones?.[parent];
        if (tombstone !== undefined && (deleteStamp === undefined || compareStamps(tombstone, deleteStamp) > 0)) deleteStamp = tombstone;
      }
      // Only a delete newer than the refused save says the save's group is gone too.
      if (deleteStamp === undefined || compareStamps(deleteStamp, saveStamp) <= 0) return [];
      const stamp = deleteStamp;
      const doomed = [groupId, ...descendantsOf(groupId, records)].filter((id) => {
        const recordStamp = records.get(id)?.stamp;
        return recordStamp === undefined || compareStamps(recordStamp, stamp) < 0;
      });
      await this.recordTombstones(networkId, doomed, stamp);
      const present = doomed.filter((id) => records.has(id));
      const gone: string[] = [];
      // Contacts written after the delete stay, as on the delete itself.
      for (const id of [...present].reverse()) if (await this.removeGroupAsOf(networkId, id, records.get(id), stamp)) gone.push(id);
      return gone;
    });
    for (const id of removed) this.notify(networkId, id, 'deleted');
  }

  async loadGroupState(networkId: string, groupId: string): Promise<GroupState | null> {
    this.checkIds(networkId, groupId);
    await this.open('loadGroupState');
    return this.readGroup(networkId, groupId);
  }

  async deleteGroup(networkId: string, groupId: string): Promise<void> {
    await this.applyGroupDelete(networkId, groupId, this.nextOrigin());
  }

  /**
   * Deletes a group and its descendants unless the group was saved after `origin.stamp`; contacts
   * written after the delete stay (in an emptied group). Returns the removed group ids.
   */
  async applyGroupDelete(networkId: string, groupId: string, origin: WriteOrigin): Promise<string[]> {
    this.checkIds(networkId, groupId);
    this.checkOrigin(origin);
    await this.open('deleteGroup');
    this.clock.observe(origin.stamp);
    const outcome = await this.networkLocks.write(networkId, async () => {
      const [network, records] = await Promise.all([this.store.getNetwork(networkId), this.readGroupRecords(networkId)]);
      const target = records.get(groupId);
      // A newer save of the group or of the whole network replaced what this delete would remove.
      if (target?.stamp !== undefined && compareStamps(target.stamp, origin.stamp) > 0) return { removed: [], emptied: [] };
      if (network?.stamp !== undefined && compareStamps(network.stamp, origin.stamp) > 0) return { removed: [], emptied: [] };
      // Descendants by parent link, even when the group itself has not arrived yet; a descendant
      // saved after this delete (a newer stamp) stays.
      const doomed = [groupId, ...descendantsOf(groupId, records)].filter((id) => {
        const stamp = records.get(id)?.stamp;
        return id === groupId || stamp === undefined || compareStamps(stamp, origin.stamp) < 0;
      });
      // Tombstones first: writes older than this delete that arrive later must not bring the groups back.
      await this.recordTombstones(networkId, doomed, origin.stamp);
      const present = doomed.filter((id) => records.has(id));
      // Deepest first, so a crash never leaves a child whose parent is gone. Contacts written after
      // the delete stay, in the group as such a write creates it.
      const emptied = new Set<string>();
      for (const id of [...present].reverse()) if (!(await this.removeGroupAsOf(networkId, id, records.get(id), origin.stamp))) emptied.add(id);
      const parentId = target?.group.parentId;
      const parent = parentId === undefined ? undefined : records.get(parentId);
      if (parentId !== undefined && parent?.group.subgroupIds.includes(groupId)) {
        // On the parent as it is now: another instance may have written it since it was read.
        await this.updateGroup(networkId, parentId, (current) =>
          current?.group.subgroupIds.includes(groupId) ? { ...current, group: { ...current.group, subgroupIds: current.group.subgroupIds.filter((id) => id !== groupId) } } : null,
        );
      }
      return { removed: present.filter((id) => !emptied.has(id)), emptied: [...emptied] };
    });
    for (const id of outcome.removed) this.notify(networkId, id, 'deleted');
    for (const id of outcome.emptied) this.notify(networkId, id, 'updated');
    return outcome.removed;
  }

  // ---- networks

  async saveNetworkState(networkId: string, state: NetworkState): Promise<void> {
    await this.applyNetworkSave(networkId, state, this.nextOrigin());
  }

  /**
   * Replaces a network as of `origin.stamp`; groups left out are removed unless saved later, and
   * contacts written later stay (see `applyGroupSave`).
   * Returns the groups written and removed, or `null` when a newer save made this one moot.
   */
  async applyNetworkSave(networkId: string, state: NetworkState, origin: WriteOrigin): Promise<{ written: string[]; removed: string[] } | null> {
    validateNetworkId(networkId);
    this.checkOrigin(origin);
    validateNetworkState(state, this.maxContentBytes);
    const copy = clone(state);
    await this.open('saveNetworkState');
    this.clock.observe(origin.stamp);
    const outcome = await this.networkLocks.write(networkId, async () => {
      const existing = await this.store.getNetwork(networkId);
      if (existing?.stamp !== undefined && compareStamps(existing.stamp, origin.stamp) > 0) return null;
      if (existing?.deletedStamp !== undefined && compareStamps(existing.deletedStamp, origin.stamp) > 0) return null;
      const now = new Date();
      let superseded = false;
      const stored = await this.updateNetwork(networkId, (current) => {
        superseded =
          (current?.stamp !== undefined && compareStamps(current.stamp, origin.stamp) > 0) || (current?.deletedStamp !== undefined && compareStamps(current.deletedStamp, origin.stamp) > 0);
        if (superseded) return null;
        const next: NetworkRecord = {
          ...(current ?? {}),
          id: networkId,
          rootGroupId: copy.rootGroupId,
          currentGroupId: copy.currentGroupId,
          createdAt: current && !current.deleted ? current.createdAt : now,
          updatedAt: now,
          stamp: origin.stamp,
        };
        delete next.deleted;
        return next;
      });
      if (superseded || !stored) return null;
      const record = stored;
      const written: string[] = [];
      for (const [groupId, groupState] of copy.groups) {
        if (isTombstoned(record, groupId, origin.stamp)) continue;
        if (await this.writeGroup(networkId, groupId, groupState, origin.stamp)) written.push(groupId);
      }
      const left = new Map<string, GroupRecord | null>();
      for (const id of await this.store.listGroupIds(networkId)) {
        if (copy.groups.has(id)) continue;
        const record = await this.store.getGroup(networkId, id);
        if (record?.stamp !== undefined && compareStamps(record.stamp, origin.stamp) > 0) continue;
        left.set(id, record);
      }
      // Like deletes, so that older writes to a removed group arriving late stay removed.
      if (left.size) await this.recordTombstones(networkId, [...left.keys()], origin.stamp);
      const removed: string[] = [];
      for (const [id, record] of left) {
        if (await this.removeGroupAsOf(networkId, id, record ?? undefined, origin.stamp)) removed.push(id);
        else written.push(id);
      }
      return { written, removed };
    });
    if (!outcome) return null;
    for (const id of outcome.written) this.notify(networkId, id, 'updated');
    for (const id of outcome.removed) this.notify(networkId, id, 'deleted');
    return outcome;
  }

  async loadNetworkState(networkId: string): Promise<NetworkState | null> {
    validateNetworkId(networkId);
    await this.open('loadNetworkState');
    const record = await this.store.getNetwork(networkId);
    if (!record || record.deleted) return null;
    const groups = new Map<string, GroupState>();
    for (const groupId of (await this.store.listGroupIds(networkId)).sort()) {
      const state = await this.readGroup(networkId, groupId);
      if (state) groups.set(groupId, state);
    }
    return { groups, rootGroupId: record.rootGroupId, currentGroupId: record.currentGroupId };
  }

  async listNetworks(): Promise<string[]> {
    await this.open('listNetworks');
    const ids = await this.store.listNetworkIds();
    const records = await Promise.all(ids.map((id) => this.store.getNetwork(id)));
    return records.filter((r): r is NetworkRecord => r !== null && !r.deleted).map((r) => r.id).sort();
  }

  async deleteNetwork(networkId: string): Promise<void> {
    await this.applyNetworkDelete(networkId, this.nextOrigin());
  }

  /**
   * Deletes a network with everything in it, unless it was saved after `origin.stamp`; groups saved
   * and contacts written after the delete stay. Returns its former groups, or `null` when skipped.
   */
  async applyNetworkDelete(networkId: string, origin: WriteOrigin): Promise<string[] | null> {
    validateNetworkId(networkId);
    this.checkOrigin(origin);
    await this.open('deleteNetwork');
    this.clock.observe(origin.stamp);
    const groups = await this.networkLocks.write(networkId, async () => {
      const record = await this.store.getNetwork(networkId);
      if (record?.stamp !== undefined && compareStamps(record.stamp, origin.stamp) > 0) return null;
      const ids = record?.deleted ? [] : await this.store.listGroupIds(networkId);
      const kept = record?.deleted ? [] : await this.groupsWrittenAfter(networkId, ids, origin.stamp);
      if (kept.length) return this.deleteNetworkExceptLater(networkId, ids, origin.stamp);
      await this.store.deleteNetwork(networkId);
      // The record stays behind as a tombstone, so older writes arriving late stay deleted.
      const now = new Date();
      await this.updateNetwork(networkId, (current) => {
        // Tombstones another instance recorded since the read above are kept.
        const newest = [record?.deletedStamp, current?.deletedStamp, origin.stamp].filter((stamp): stamp is string => stamp !== undefined);
        const deletedStamp = newest.reduce((a, b) => (compareStamps(a, b) >= 0 ? a : b));
        return {
          id: networkId,
          rootGroupId: record?.rootGroupId ?? '',
          currentGroupId: record?.currentGroupId ?? '',
          createdAt: record?.createdAt ?? now,
          updatedAt: now,
          deleted: true,
          deletedStamp,
          tombstones: pruneTombstones({ ...record?.tombstones, ...current?.tombstones }),
        };
      });
      return ids;
    });
    if (!groups) return null;
    for (const id of groups) this.notify(networkId, id, 'deleted');
    return groups;
  }

  async exists(networkId: string): Promise<boolean> {
    validateNetworkId(networkId);
    await this.open('exists');
    const record = await this.store.getNetwork(networkId);
    return record !== null && !record.deleted;
  }

  // ---- queries

  async queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]> {
    validateNetworkId(networkId);
    validateQuery(query);
    await this.open('queryGroups');
    const records = await this.readGroupRecords(networkId);
    const matching = [...records.values()].filter((record) => groupMatches(record.group, query));
    const states = await Promise.all(matching.map((record) => this.readGroup(networkId, record.group.id)));
    return states.filter((s): s is GroupState => s !== null);
  }

  // ---- snapshots

  /** With `options.snapshotId`, a second call with the same id returns that id without writing. */
  async saveSnapshot(networkId: string, label?: string, options: SaveSnapshotOptions = {}): Promise<string> {
    return (await this.writeSnapshot(networkId, label, options)).info.id;
  }

  /**
   * `saveSnapshot` that also tells whether the snapshot was made by this call (`created`) or
   * existed already under `options.snapshotId`. The body is encoded one group at a time straight
   * into the store, so memory holds about a group, never the network (with stores that stream).
   */
  async writeSnapshot(networkId: string, label?: string, options: SaveSnapshotOptions = {}): Promise<SnapshotWrite> {
    validateNetworkId(networkId);
    if (label !== undefined && typeof label !== 'string') throw new InvalidArgumentError('snapshot label must be a string');
    const requestedId = snapshotIdOption(options);
    await this.open('saveSnapshot');
    // Exclusive, so the snapshot is one consistent state of the network.
    return this.networkLocks.write(networkId, async () => {
      const record = await this.store.getNetwork(networkId);
      if (!record || record.deleted) throw new NetworkNotFoundError(networkId);
      if (requestedId !== undefined) {
        const existing = await this.findSnapshotInfo(networkId, requestedId);
        if (existing) return { created: false, info: existing };
      }
      // Taken before reading: a write that lands after this time counts as newer than the snapshot.
      const info: SnapshotInfo = { id: requestedId ?? newSnapshotId(), networkId, createdAt: new Date(), ...(label !== undefined && { label }) };
      const chunks = encodeNetworkStateChunks(record, this.readGroupsInOrder(networkId));
      if (this.store.putSnapshotStream) return this.store.putSnapshotStream(networkId, info, chunks);
      let payload = '';
      for await (const chunk of chunks) payload += chunk;
      const stored: SnapshotInfo = { ...info, size: Buffer.byteLength(payload, 'utf8'), sha256: createHash('sha256').update(payload, 'utf8').digest('hex') };
      await this.store.putSnapshot(networkId, stored, payload);
      return { created: true, info: stored };
    });
  }

  /**
   * Snapshots the network only when it changed since its newest snapshot: when its state was
   * last written (`lastChanged`) after that snapshot's `createdAt`, less `changeToleranceMs`.
   * `null` when unchanged; throws `NetworkNotFoundError` for an unknown network.
   */
  async snapshotIfChanged(networkId: string, label?: string, options: SnapshotIfChangedOptions = {}): Promise<SnapshotWrite | null> {
    const tolerance = options.changeToleranceMs ?? DEFAULT_CHANGE_TOLERANCE_MS;
    if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) {
      throw new InvalidArgumentError(`changeToleranceMs must be a number of milliseconds, 0 or more, not ${JSON.stringify(tolerance)}`);
    }
    const changed = await this.lastChanged(networkId);
    if (changed === null) throw new NetworkNotFoundError(networkId);
    const [newest] = await this.listSnapshots(networkId);
    if (newest && changed.getTime() <= newest.createdAt.getTime() - tolerance) return null;
    return this.writeSnapshot(networkId, label, options);
  }

  /**
   * When the network's state (records, contacts, deletes; not snapshots) was last written, by
   * the store's clock and from metadata only; `null` for a network that does not exist.
   */
  async lastChanged(networkId: string): Promise<Date | null> {
    validateNetworkId(networkId);
    await this.open('lastChanged');
    if (!this.store.lastChanged) throw new InvalidArgumentError('this storage cannot tell when a network last changed (its StateStore has no lastChanged)');
    const [record, changed] = await Promise.all([this.store.getNetwork(networkId), this.store.lastChanged(networkId)]);
    return record && !record.deleted ? changed : null;
  }

  /** Deletes all but the newest `keep` snapshots, oldest first; returns the ids deleted. */
  async pruneSnapshots(networkId: string, keep: number): Promise<string[]> {
    validateNetworkId(networkId);
    if (!Number.isSafeInteger(keep) || keep < 0) throw new InvalidArgumentError(`keep must be a whole number of snapshots, 0 or more, not ${JSON.stringify(keep)}`);
    await this.open('pruneSnapshots');
    const doomed = (await this.listSnapshots(networkId)).slice(keep).reverse();
    const deleted: string[] = [];
    // A snapshot another pruner deleted first is not reported twice.
    for (const info of doomed) if (await this.store.deleteSnapshot(networkId, info.id)) deleted.push(info.id);
    return deleted;
  }

  async loadSnapshot(networkId: string, snapshotId: string): Promise<NetworkState> {
    validateNetworkId(networkId);
    validateSnapshotId(snapshotId);
    await this.open('loadSnapshot');
    const payload = await this.store.getSnapshot(networkId, snapshotId);
    if (payload === null) throw new SnapshotNotFoundError(networkId, snapshotId);
    return publicNetworkState(decode<NetworkState>(payload));
  }

  /**
   * Puts a snapshot back as the live network: a network save stamped `origin.stamp` (now by
   * default), so writes older than the restore that arrive afterwards do not survive it and newer
   * ones apply on top. Returns what `applyNetworkSave` returns.
   */
  async restoreSnapshot(networkId: string, snapshotId: string, origin: WriteOrigin = this.nextOrigin()): Promise<{ written: string[]; removed: string[] } | null> {
    const state = await this.loadSnapshot(networkId, snapshotId);
    return this.applyNetworkSave(networkId, state, origin);
  }

  async listSnapshots(networkId: string): Promise<SnapshotInfo[]> {
    validateNetworkId(networkId);
    await this.open('listSnapshots');
    const infos = await this.store.listSnapshots(networkId);
    return infos.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  }

  async deleteSnapshot(networkId: string, snapshotId: string): Promise<void> {
    validateNetworkId(networkId);
    validateSnapshotId(snapshotId);
    await this.open('deleteSnapshot');
    if (!(await this.store.deleteSnapshot(networkId, snapshotId))) throw new SnapshotNotFoundError(networkId, snapshotId);
  }

  private findSnapshotInfo(networkId: string, snapshotId: string): Promise<SnapshotInfo | null> {
    if (this.store.getSnapshotInfo) return this.store.getSnapshotInfo(networkId, snapshotId);
    return this.store.listSnapshots(networkId).then((infos) => infos.find((info) => info.id === snapshotId) ?? null);
  }

  /**
   * The network's groups as `loadNetworkState` orders them, handed over one at a time while the
   * next `SNAPSHOT_READ_AHEAD` are being read: reads of a remote store overlap, memory stays at
   * a few groups.
   */
  private async *readGroupsInOrder(networkId: string): AsyncGenerator<[string, GroupState]> {
    const ids = (await this.store.listGroupIds(networkId)).sort();
    const reading: Array<Promise<GroupState | null>> = [];
    let started = 0;
    try {
      for (let i = 0; i < ids.length; i++) {
        // Group i and the ones after it, up to SNAPSHOT_READ_AHEAD.
        while (started < ids.length && started <= i + SNAPSHOT_READ_AHEAD) reading.push(this.readGroup(networkId, ids[started++]!));
        const state = await reading.shift()!;
        if (state) yield [ids[i]!, state];
      }
    } finally {
      // Abandoned early (the snapshot existed, the upload failed): reads ahead must not fail unobserved.
      for (const pending of reading) pending.catch(() => undefined);
    }
  }

  // ---- federation

  async subscribe(path: string, callback: SubscriptionCallback): Promise<Unsubscribe> {
    const parsed = parsePath(path);
    if (typeof callback !== 'function') throw new InvalidArgumentError('subscribe needs a callback function');
    await this.open('subscribe');
    const subscription: Subscription = { path: parsed, callback, delivery: Promise.resolve() };
    this.subscriptions.add(subscription);
    return async () => {
      this.subscriptions.delete(subscription);
    };
  }

  async sync(remote: NetworkStorage): Promise<SyncResult> {
    await this.open('sync');
    return copyNetworks(remote, this);
  }

  // ---- internals

  /** Stamp and sequence number for a write this instance makes itself. */
  nextOrigin(): WriteOrigin {
    return { stamp: this.clock.tick(), writerId: this.writerId, seq: ++this.sequence };
  }

  private checkOrigin(origin: WriteOrigin): void {
    if (!isStamp(origin.stamp)) throw new InvalidArgumentError(`write stamp ${JSON.stringify(origin.stamp)} is not a clock stamp`);
    validateWriterId(origin.writerId);
    if (!Number.isSafeInteger(origin.seq) || origin.seq < 1) throw new InvalidArgumentError(`write seq must be a positive integer, not ${origin.seq}`);
  }

  private checkIds(networkId: string, groupId: string, contactId?: string): void {
    validateNetworkId(networkId);
    validateGroupId(groupId);
    if (contactId !== undefined) validateContactId(contactId);
  }

  private async open(operation: string): Promise<void> {
    if (this.closed) throw new StorageClosedError(operation);
    await this.initialize();
  }

  /**
   * Prepares a write at `stamp` to a group: creates or revives the network record (a new
   * network's root is its first group) and, with `create`, the group record. Returns `null`
   * when a newer delete of the network, the group or one of its ancestors supersedes the write.
   */
  private async admitGroupWrite(
    networkId: string,
    groupId: string,
    stamp: string,
    options: { create: boolean; parentId?: string; cached?: boolean },
  ): Promise<{ group: GroupRecord; network: NetworkRecord } | null> {
    const cached = options.cached === true;
    // Both records in one round trip: on Cloud Storage each read is a request.
    let [network, existing] = await Promise.all([this.store.getNetwork(networkId, { cached }), this.store.getGroup(networkId, groupId, { cached })]);
    // No group record: maybe deleted elsewhere since the network record was cached, so its tombstone must be read.
    if (cached && !existing) network = await this.store.getNetwork(networkId);
    if (supersededByDelete(network, groupId, stamp)) return null;
    const visited = new Set<string>([groupId]);
    for (let parent = options.parentId; parent !== undefined && !visited.has(parent); ) {
      if (isTombstoned(network, parent, stamp)) return null;
      visited.add(parent);
      parent = (await this.store.getGroup(networkId, parent))?.group.parentId;
    }
    if (!network || network.deleted) {
      const now = new Date();
      // Created or revived on the record as it is now, whatever another instance wrote meanwhile.
      // Never null: either someone else's live record or the one made here.
      network = (await this.updateNetwork(networkId, (current) => {
        if (current && !current.deleted) return null;
        const revived: NetworkRecord = { ...(current ?? {}), id: networkId, rootGroupId: groupId, currentGroupId: groupId, createdAt: now, updatedAt: now };
        delete revived.deleted;
        return revived;
      }))!;
      if (supersededByDelete(network, groupId, stamp)) return null;
    }
    if (existing || !options.create) return { group: existing ?? emptyRecord(groupId), network };
    const record = emptyRecord(groupId);
    await this.store.putGroup(networkId, record);
    return { group: record, network };
  }

  private async recordTombstones(networkId: string, groupIds: string[], stamp: string): Promise<void> {
    const now = new Date();
    await this.updateNetwork(networkId, (current) => {
      // A delete that arrives before anything of its network still has to be remembered: as a
      // record that is not listed (deleted) until a newer write revives it.
      const network = current ?? { id: networkId, rootGroupId: '', currentGroupId: '', createdAt: now, updatedAt: now, deleted: true };
      const tombstones = pruneTombstones({ ...network.tombstones });
      for (const id of groupIds) {
        const previous = tombstones[id];
        if (previous === undefined || compareStamps(stamp, previous) > 0) tombstones[id] = stamp;
      }
      return { ...network, tombstones };
    });
  }

  /**
   * Read-modify-write of the network record through the store's compare-and-set, so instances
   * sharing the store never lose each other's tombstones; `update` may run more than once.
   * Resolves with the record as it is afterwards.
   */
  private async updateNetwork(networkId: string, update: (current: NetworkRecord | null) => NetworkRecord | null): Promise<NetworkRecord | null> {
    let result: NetworkRecord | null = null;
    await this.store.updateNetwork(networkId, (current) => {
      const next = update(current);
      result = next ?? current;
      return next;
    });
    return result;
  }

  /** The contacts among `contactIds` stored on their own, not packed into the group record. */
  private readSingleContacts(networkId: string, groupId: string, contactIds: readonly string[], options?: RecordReadOptions): Promise<Contact[]> {
    if (this.store.getContacts) return this.store.getContacts(networkId, groupId, contactIds, options);
    const wanted = new Set(contactIds);
    return this.store.listContacts(networkId, groupId).then((contacts) => contacts.filter((c) => wanted.has(c.id)));
  }

  private async updateGroup(networkId: string, groupId: string, update: GroupUpdate, options?: RecordReadOptions): Promise<void> {
    if (this.store.updateGroup) return this.store.updateGroup(networkId, groupId, update, options);
    const next = update(await this.store.getGroup(networkId, groupId));
    if (next) await this.store.putGroup(networkId, next);
  }

  private async updateContact(networkId: string, groupId: string, contactId: string, update: ContactUpdate): Promise<void> {
    if (this.store.updateContact) return this.store.updateContact(networkId, groupId, contactId, update);
    const next = update(await this.store.getContact(networkId, groupId, contactId));
    if (next) await this.store.putContact(networkId, groupId, next);
  }

  /**
   * Replaces a group as of `stamp`, rebasing every contact on what `state` gives it (see
   * `rebaseContact`); contacts first, so a crash leaves no record pointing at missing contacts.
   */
  private async writeGroup(networkId: string, groupId: string, state: GroupState, stamp: string): Promise<boolean> {
    const record = await this.store.getGroup(networkId, groupId);
    if (record?.stamp !== undefined && compareStamps(record.stamp, stamp) > 0) return false;
    const packed = record?.contacts ?? new Map<string, StoredContact>();
    const singles = new Map((await this.store.listContacts(networkId, groupId)).map((c) => [c.id, c] as const));
    const existing = mergeContacts(packed, singles);
    // Packed contacts written after this save and kept as they are stay packed; the rest are now stored one by one.
    const keptPacked = new Map<string, StoredContact>();
    const gone: string[] = [];
    for (const id of mergeIds(state.contacts.keys(), existing.keys())) {
      const current = existing.get(id) ?? null;
      const next = rebaseContact(current, state.contacts.get(id) ?? null, stamp, { contactId: id, groupId });
      if (next === null) gone.push(id);
      else if (next !== current) await this.store.putContact(networkId, groupId, next);
      else if (packed.get(id) === current) keptPacked.set(id, current);
    }
    const group = { ...state.group, contactIds: mergeIds(state.group.contactIds, state.contacts.keys()) };
    await this.store.putGroup(networkId, { group, wires: state.wires, stamp, ...(keptPacked.size ? { contacts: keptPacked } : {}) });
    for (const id of gone) if (singles.has(id)) await this.store.deleteContact(networkId, groupId, id);
    return true;
  }

  /**
   * Removes a group as of `stamp`, except the contacts written after it: those stay, in an empty
   * group stamped `stamp` (as a write after the removal would have created it). True when the
   * group is gone.
   */
  private async removeGroupAsOf(networkId: string, groupId: string, record: GroupRecord | undefined, stamp: string): Promise<boolean> {
    if (!(await this.hasWritesAfter(networkId, groupId, record, stamp))) {
      await this.store.deleteGroup(networkId, groupId);
      return true;
    }
    await this.writeGroup(networkId, groupId, emptyGroupState(groupId), stamp);
    return false;
  }

  private async hasWritesAfter(networkId: string, groupId: string, record: GroupRecord | undefined, stamp: string): Promise<boolean> {
    const singles = new Map((await this.store.listContacts(networkId, groupId)).map((c) => [c.id, c] as const));
    const contacts = mergeContacts(record?.contacts, singles);
    return [...contacts.values()].some((contact) => rebaseContact(contact, null, stamp, { contactId: contact.id, groupId }) !== null);
  }

  /** Of `groupIds`, the groups saved or with contacts written after `stamp`. */
  private async groupsWrittenAfter(networkId: string, groupIds: readonly string[], stamp: string): Promise<string[]> {
    const out: string[] = [];
    for (const id of groupIds) {
      const record = await this.store.getGroup(networkId, id);
      const saved = record?.stamp !== undefined && compareStamps(record.stamp, stamp) > 0;
      if (saved || (await this.hasWritesAfter(networkId, id, record ?? undefined, stamp))) out.push(id);
    }
    return out;
  }

  /**
   * A network delete delivered after later writes to the network: groups saved later stay as they
   * are, the others are removed as of `stamp` keeping what was written later, and the snapshots go.
   * The record stays live, with `deletedStamp` so older writes arriving afterwards stay deleted.
   */
  private async deleteNetworkExceptLater(networkId: string, groupIds: readonly string[], stamp: string): Promise<string[]> {
    const remaining: string[] = [];
    const removed: string[] = [];
    for (const id of groupIds) {
      const record = await this.store.getGroup(networkId, id);
      if (record?.stamp !== undefined && compareStamps(record.stamp, stamp) > 0) remaining.push(id);
      else if (await this.removeGroupAsOf(networkId, id, record ?? undefined, stamp)) removed.push(id);
      else remaining.push(id);
    }
    for (const info of await this.store.listSnapshots(networkId)) await this.store.deleteSnapshot(networkId, info.id);
    const now = new Date();
    await this.updateNetwork(networkId, (current) => {
      const base = current ?? { id: networkId, rootGroupId: '', currentGroupId: '', createdAt: now, updatedAt: now };
      const deletedStamp = base.deletedStamp !== undefined && compareStamps(base.deletedStamp, stamp) > 0 ? base.deletedStamp : stamp;
      const root = remaining.includes(base.rootGroupId) ? base.rootGroupId : [...remaining].sort()[0]!;
      const currentGroupId = remaining.includes(base.currentGroupId) ? base.currentGroupId : root;
      const next: NetworkRecord = { ...base, rootGroupId: root, currentGroupId, updatedAt: now, deletedStamp };
      delete next.deleted;
      delete next.stamp;
      return next;
    });
    return removed;
  }

  private async readGroup(networkId: string, groupId: string): Promise<GroupState | null> {
    const record = await this.store.getGroup(networkId, groupId);
    if (!record) return null;
    return assembleGroupState(record, await this.store.listContacts(networkId, groupId));
  }

  private async readGroupRecords(networkId: string): Promise<Map<string, GroupRecord>> {
    const ids = await this.store.listGroupIds(networkId);
    const records = await Promise.all(ids.map((id) => this.store.getGroup(networkId, id)));
    return new Map(records.filter((r): r is GroupRecord => r !== null).map((r) => [r.group.id, r] as const));
  }

  private notify(networkId: string, groupId: string, kind: GroupChangeKind): void {
    const matching = [...this.subscriptions].filter((s) => pathMatches(s.path, networkId, groupId));
    if (matching.length === 0) return;
    const change: GroupChange = { networkId, groupId, path: changePath(networkId, groupId), kind, time: new Date() };
    const state = kind === 'deleted' ? Promise.resolve(null) : this.readGroup(networkId, groupId).catch(() => null);
    for (const subscription of matching) {
      // Each subscriber sees its changes one at a time, in the order they happened.
      subscription.delivery = subscription.delivery.then(async () => {
        if (!this.subscriptions.has(subscription)) return;
        try {
          await subscription.callback(await state, change);
        } catch (error) {
          this.log.error('subscriber callback failed', { path: change.path, error });
        }
      });
    }
  }
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

/** A stored contact as the contract has it: without the blend bookkeeping. */
export function publicContact(contact: StoredContact): Contact {
  const { version: _bookkeeping, ...rest } = contact;
  return rest;
}

/** A network state with every contact as the contract has it (snapshots written before loads left out the bookkeeping carry it). */
function publicNetworkState(state: NetworkState): NetworkState {
  for (const group of state.groups.values()) {
    for (const [id, contact] of group.contacts) group.contacts.set(id, publicContact(contact));
  }
  return state;
}

/** Tombstones live as long as Pub/Sub may still redeliver an older write (its 7-day retention). */
const TOMBSTONE_TTL_MS = 8 * 24 * 60 * 60 * 1000;

function pruneTombstones(tombstones: Record<string, string>, now = Date.now()): Record<string, string> {
  return Object.fromEntries(Object.entries(tombstones).filter(([, stamp]) => parseStamp(stamp).wallTime > now - TOMBSTONE_TTL_MS));
}

function isTombstoned(network: NetworkRecord | null, groupId: string, stamp: string): boolean {
  const tombstone = network?.tombstones?.[groupId];
  return tombstone !== undefined && compareStamps(tombstone, stamp) > 0;
}

/**
 * A write at `stamp` to the group is older than a delete of the network or the group, or than a
 * save of the whole network (which replaced every group, and removed the ones it left out).
 */
function supersededByDelete(network: NetworkRecord | null, groupId: string, stamp: string): boolean {
  const newer = (other: string | undefined) => other !== undefined && compareStamps(other, stamp) > 0;
  return newer(network?.deletedStamp) || newer(network?.stamp) || isTombstoned(network, groupId, stamp);
}

/** A write at `stamp` comes before the group's last whole-group operation (save, delete, network save, restore), which replaced it. */
function replacedByGroupOperation(record: GroupRecord, stamp: string): boolean {
  return record.stamp !== undefined && compareStamps(record.stamp, stamp) > 0;
}

/** The newer of two copies of a contact by clock stamp (a copy without a stamp is the older). */
function newestContact(a: StoredContact | null, b: StoredContact | null): StoredContact | null {
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
function mergeContacts(packed: Map<string, StoredContact> | undefined, singles: Map<string, StoredContact>): Map<string, StoredContact> {
  const out = new Map(singles);
  for (const [id, contact] of packed ?? []) out.set(id, newestContact(contact, out.get(id) ?? null)!);
  return out;
}

function emptyRecord(groupId: string): GroupRecord {
  const { group, wires } = emptyGroupState(groupId);
  return { group, wires };
}

function supersededOutcome(contactId: string, groupId: string, write: ContactWrite): BlendOutcome {
  return { contact: { id: contactId, groupId, blendMode: write.blendMode ?? 'accept-last' }, contentChanged: false, duplicate: false, contradiction: false, superseded: true };
}

function mergeIds(first: Iterable<string>, second: Iterable<string>): string[] {
  const out = [...first];
  const seen = new Set(out);
  for (const id of second) if (!seen.has(id)) out.push(id), seen.add(id);
  return out;
}

/** Groups below `groupId` by parent links, deepest last. */
function descendantsOf(groupId: string, records: Map<string, GroupRecord>): string[] {
  const children = new Map<string, string[]>();
  for (const record of records.values()) {
    const parent = record.group.parentId;
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), record.group.id]);
  }
  const out: string[] = [];
  const visit = (id: string) => {
    for (const child of children.get(id) ?? []) {
      if (child === groupId || out.includes(child)) continue;
      out.push(child);
      visit(child);
    }
  };
  visit(groupId);
  return out;
}

function snapshotIdOption(options: SaveSnapshotOptions): string | undefined {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('snapshot options must be an object');
  return options.snapshotId === undefined ? undefined : validateSnapshotId(options.snapshotId);
}
