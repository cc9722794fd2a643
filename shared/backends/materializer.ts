import { applyContactWrite, rebaseContact, type BlendOutcome, type ContactWrite } from '../blend';
import { clone } from '../codec';
import { InvalidArgumentError } from '../errors';
import type { WriteOrigin } from '../events/types';
import { compareStamps, isStamp, parseStamp, type HybridLogicalClock } from '../hlc';
import { changePath, validateContactId, validateGroupId, validateNetworkId, validateWriterId } from '../ids';
import type { GroupChangeKind, GroupState, NetworkState, StoredContact } from '../model';
import { DEFAULT_MAX_CONTENT_BYTES, validateGroupState, validateNetworkState } from '../state-validation';
import { mapWithConcurrency } from '../util/concurrency';
import type { KeyedMutex, KeyedReadWriteLock } from '../util/locks';
import {
  emptyGroupState,
  emptyRecord,
  mergeContacts,
  mergeIds,
  newestContact,
  readGroupRecords,
} from './group-records';
import type { GroupRecord, GroupWrite, NetworkRecord, StateStore, StoredGroup } from './state-store';

/** One contact write of an event, as materialize and persist hand it over. */
export interface ContactWriteEntry {
  contactId: string;
  write: ContactWrite;
}

/** What a network save (or a restore) did: the groups written and the groups removed. */
export interface NetworkSaveOutcome {
  written: string[];
  removed: string[];
}

/**
 * Applies stamped writes from any writer to the materialized state with the blend semantics:
 * what the materialize and persist functions call for each event. Every method is idempotent
 * under redelivery (contact writes are applied at most once per `(writerId, seq)`, whole-group
 * and network operations by their stamp) and convergent under reordering: a write older than a
 * delete, save or restore that covers it (by clock stamp) is superseded, whatever the order of
 * arrival. Ids, origins and states are validated first: bad input throws the typed error
 * (`InvalidIdError`, `InvalidArgumentError`, …) and changes nothing.
 */
export interface Materializer {
  /**
   * Applies one contact write, creating the network and group when missing. A write older than a
   * newer delete of its network or group (or its network's save) is `superseded`; one applied
   * before is a `duplicate`. Returns the blend outcome.
   */
  applyContactWrite(networkId: string, groupId: string, contactId: string, write: ContactWrite): Promise<BlendOutcome>;
  /**
   * Applies many writes to one group with a single write of the group record (they are packed
   * into it), in clock order, each at most once. Returns an outcome per write, in the order given;
   * `[]` for none. Superseded as of the newest write means superseded for all of them.
   */
  applyContactWriteBatch(networkId: string, groupId: string, writes: ContactWriteEntry[]): Promise<BlendOutcome[]>;
  /**
   * Applies the writes one event of the mesh carries: several (a bundle) as `applyContactWriteBatch`,
   * a lone write as the backend stores it best (on its own contact, or packed where one record
   * write is cheaper). Returns an outcome per write, in the order given.
   */
  applyContactWrites(networkId: string, groupId: string, writes: ContactWriteEntry[]): Promise<BlendOutcome[]>;
  /**
   * Replaces a group as of `origin.stamp`. A save older than the group's last whole-group
   * operation, or than a delete of it or of an ancestor, is skipped (false); what was written to
   * contacts after the save stays on top of it. A save refused for a later ancestor delete
   * removes the group as of that delete.
   */
  applyGroupSave(networkId: string, groupId: string, state: GroupState, origin: WriteOrigin): Promise<boolean>;
  /**
   * Deletes a group and its descendants unless saved after `origin.stamp`; contacts written after
   * the delete stay (in an emptied group). Tombstones keep older writes arriving later out.
   * Returns the removed group ids (`[]` when skipped or nothing was there).
   */
  applyGroupDelete(networkId: string, groupId: string, origin: WriteOrigin): Promise<string[]>;
  /**
   * Replaces a network as of `origin.stamp`; groups left out are removed unless saved later, and
   * contacts written later stay. `null` when a newer save or delete made this one moot.
   */
  applyNetworkSave(networkId: string, state: NetworkState, origin: WriteOrigin): Promise<NetworkSaveOutcome | null>;
  /**
   * Deletes a network with everything in it, unless saved after `origin.stamp`; groups saved and
   * contacts written after the delete stay. Returns its former groups, or `null` when skipped.
   */
  applyNetworkDelete(networkId: string, origin: WriteOrigin): Promise<string[] | null>;
}

/** In-process locks shared by the parts of one storage: group writes run one at a time per group, network-wide work excludes them. */
export interface WriteLocks {
  networks: KeyedReadWriteLock;
  groups: KeyedMutex;
}

export interface StoreMaterializerOptions {
  /** The clock of the storage; every stamp applied is observed, so this instance's next stamp is newer. */
  clock: HybridLogicalClock;
  locks: WriteLocks;
  /** Resolves once the store is ready; throws `StorageClosedError` once it is closed. */
  open(operation: string): Promise<void>;
  /** Told of every group changed or deleted, once the write is done. */
  onChange(networkId: string, groupId: string, kind: GroupChangeKind): void;
  maxContentBytes?: number;
  /**
   * Lone writes are packed into the group record too (`applyContactWrites`): on Cloud Storage,
   * with the record cached, that is one compare-and-set request, where a contact of its own costs
   * a read of each record, of the contact and a write. Default false.
   */
  packLoneWrites?: boolean;
  /**
   * A lone contact write reads the network and group records with `cached`: for a store whose
   * cached copies are current for them (files with one writing process, whose network record it
   * checks with a stat), so the write to disk is not preceded by reads. Default false: a store
   * whose cache is caught up only by a compare-and-set of the group record (Cloud Storage) must
   * not admit a lone write, which writes the contact alone, from it.
   */
  admitFromCache?: boolean;
  /**
   * Groups a network save writes at once, and contacts of one group a group write writes at once.
   * Default 1: one after another. For stores whose writes overlap well (files on one disk).
   */
  writeConcurrency?: number;
}

/**
 * The `Materializer` over a `StateStore`: the blend semantics, tombstones and cascading deletes
 * live here once for every backend. Each operation runs as one `store.atomically` unit (a group
 * for contact writes, the network otherwise) under the in-process `locks`.
 */
export class StoreMaterializer implements Materializer {
  private readonly clock: HybridLogicalClock;
  private readonly locks: WriteLocks;
  private readonly maxContentBytes: number;
  private readonly packLoneWrites: boolean;
  private readonly admitFromCache: boolean;
  private readonly writeConcurrency: number;

  constructor(
    private readonly store: StateStore,
    private readonly options: StoreMaterializerOptions,
  ) {
    this.clock = options.clock;
    this.locks = options.locks;
    this.maxContentBytes = options.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES;
    this.packLoneWrites = options.packLoneWrites ?? false;
    this.admitFromCache = options.admitFromCache ?? false;
    this.writeConcurrency = options.writeConcurrency ?? 1;
  }

  async applyContactWrite(
    networkId: string,
    groupId: string,
    contactId: string,
    write: ContactWrite,
  ): Promise<BlendOutcome> {
    checkIds(networkId, groupId, contactId);
    checkOrigin(write);
    return this.applyCheckedContactWrite(networkId, groupId, contactId, write);
  }

  /** @internal `applyContactWrite` for a caller that has validated the ids and the origin already (a storage stamping its own write). */
  async applyCheckedContactWrite(
    networkId: string,
    groupId: string,
    contactId: string,
    write: ContactWrite,
  ): Promise<BlendOutcome> {
    await this.options.open('applyContactWrite');
    this.clock.observe(write.stamp);
    const outcome = await this.inGroup(networkId, groupId, async () => {
      const admitted = await this.admitGroupWrite(networkId, groupId, write.stamp, {
        create: true,
        cached: this.admitFromCache,
      });
      if (!admitted) return supersededOutcome(contactId, groupId, write);
      const group = admitted.group;
      if (replacedByGroupOperation(group, write.stamp)) return supersededOutcome(contactId, groupId, write);
      let result: BlendOutcome | undefined;
      const packed = group.contacts?.get(contactId) ?? null;
      await this.store.updateContact(networkId, groupId, contactId, (stored) => {
        const current = newestContact(stored, packed);
        result = applyContactWrite(current, { contactId, groupId }, write);
        const worthWriting =
          !result.duplicate &&
          (result.contentChanged || result.contradiction || result.contact.blendMode === 'merge' || stored === null);
        return worthWriting ? result.contact : null;
      });
      return result!;
    });
    if (outcome.contentChanged || outcome.contradiction) this.options.onChange(networkId, groupId, 'updated');
    return outcome;
  }

  /**
   * The network and group records may come from the store's cache: the group record's
   * compare-and-set catches a stale copy (another instance wrote or deleted the group), and then
   * the writes are admitted again from fresh reads.
   */
  async applyContactWriteBatch(
    networkId: string,
    groupId: string,
    writes: ContactWriteEntry[],
  ): Promise<BlendOutcome[]> {
    checkIds(networkId, groupId);
    for (const { contactId, write } of writes) {
      validateContactId(contactId);
      checkOrigin(write);
    }
    return this.applyCheckedContactWriteBatch(networkId, groupId, writes);
  }

  /** @internal `applyContactWriteBatch` for a caller that has validated the ids and origins already. */
  async applyCheckedContactWriteBatch(
    networkId: string,
    groupId: string,
    writes: ContactWriteEntry[],
  ): Promise<BlendOutcome[]> {
    await this.options.open('applyContactWriteBatch');
    if (writes.length === 0) return [];
    for (const { write } of writes) this.clock.observe(write.stamp);
    const order = writes
      .map((w, index) => ({ ...w, index }))
      .sort((a, b) => compareStamps(a.write.stamp, b.write.stamp));
    const newestStamp = order[order.length - 1]!.write.stamp;
    const contactIds = [...new Set(writes.map((w) => w.contactId))];
    const outcomes = await this.inGroup(networkId, groupId, async () => {
      for (let cached = true; ; cached = false) {
        const results = new Array<BlendOutcome>(writes.length);
        // Together: on a remote store each is a round trip, and neither needs the other.
        const [admitted, stored] = await Promise.all([
          this.admitGroupWrite(networkId, groupId, newestStamp, { create: false, cached }),
          this.store.getContacts(networkId, groupId, contactIds, { cached }),
        ]);
        // Superseded as of the newest write means superseded for all of them.
        if (!admitted) return writes.map(({ contactId, write }) => supersededOutcome(contactId, groupId, write));
        const { network } = admitted;
        const singles = new Map(stored.map((c) => [c.id, c] as const));
        let calls = 0;
        let stale = false;
        await this.store.updateGroup(
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
    });
    if (outcomes.some((o) => o.contentChanged || o.contradiction)) this.options.onChange(networkId, groupId, 'updated');
    return outcomes;
  }

  async applyContactWrites(networkId: string, groupId: string, writes: ContactWriteEntry[]): Promise<BlendOutcome[]> {
    if (writes.length === 1 && !this.packLoneWrites)
      return [await this.applyContactWrite(networkId, groupId, writes[0]!.contactId, writes[0]!.write)];
    return this.applyContactWriteBatch(networkId, groupId, writes);
  }

  async applyGroupSave(networkId: string, groupId: string, state: GroupState, origin: WriteOrigin): Promise<boolean> {
    checkIds(networkId, groupId);
    checkOrigin(origin);
    validateGroupState(groupId, state, this.maxContentBytes);
    const copy = clone(state);
    await this.options.open('saveGroupState');
    this.clock.observe(origin.stamp);
    // The group only, so saves of different groups run side by side; a refused save may cascade
    // a delete of its ancestors' descendants, which takes the network afterwards (it reads afresh).
    const applied = await this.inGroup(networkId, groupId, async () => {
      const admitted = await this.admitGroupWrite(networkId, groupId, origin.stamp, {
        create: false,
        parentId: copy.group.parentId,
      });
      if (!admitted) return false;
      return this.writeGroup(networkId, groupId, copy, origin.stamp);
    });
    const parentId = copy.group.parentId;
    const removed =
      applied || parentId === undefined
        ? []
        : await this.store.atomically({ kind: 'network', networkId }, () =>
            this.cascadeAncestorDelete(networkId, groupId, parentId, origin.stamp),
          );
    if (applied) this.options.onChange(networkId, groupId, 'updated');
    for (const id of removed) this.options.onChange(networkId, id, 'deleted');
    return applied;
  }

  /**
   * A save refused because an ancestor was deleted later: the group is deleted as of that
   * delete too, with the descendants that arrived before it (saves of one group tree travel
   * under different ordering keys, so a grandchild may come before its parent). Returns the
   * groups removed.
   */
  private async cascadeAncestorDelete(
    networkId: string,
    groupId: string,
    parentId: string | undefined,
    saveStamp: string,
  ): Promise<string[]> {
    if (parentId === undefined) return [];
    return this.locks.networks.write(networkId, async () => {
      const network = await this.store.getNetwork(networkId);
      const records = await readGroupRecords(this.store, networkId);
      let deleteStamp: string | undefined;
      const visited = new Set<string>([groupId]);
      for (
        let parent: string | undefined = parentId;
        parent !== undefined && !visited.has(parent);
        parent = records.get(parent)?.group.parentId
      ) {
        visited.add(parent);
        const tombstone = network?.tombstones?.[parent];
        if (tombstone !== undefined && (deleteStamp === undefined || compareStamps(tombstone, deleteStamp) > 0))
          deleteStamp = tombstone;
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
      for (const id of [...present].reverse())
        if (await this.removeGroupAsOf(networkId, id, records.get(id), stamp)) gone.push(id);
      return gone;
    });
  }

  async applyGroupDelete(networkId: string, groupId: string, origin: WriteOrigin): Promise<string[]> {
    checkIds(networkId, groupId);
    checkOrigin(origin);
    await this.options.open('deleteGroup');
    this.clock.observe(origin.stamp);
    const outcome = await this.inNetwork(networkId, async () => {
      const [network, records] = await Promise.all([
        this.store.getNetwork(networkId),
        readGroupRecords(this.store, networkId),
      ]);
      const target = records.get(groupId);
      // A newer save of the group or of the whole network replaced what this delete would remove.
      if (target?.stamp !== undefined && compareStamps(target.stamp, origin.stamp) > 0)
        return { removed: [], emptied: [] };
      if (network?.stamp !== undefined && compareStamps(network.stamp, origin.stamp) > 0)
        return { removed: [], emptied: [] };
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
      for (const id of [...present].reverse())
        if (!(await this.removeGroupAsOf(networkId, id, records.get(id), origin.stamp))) emptied.add(id);
      const parentId = target?.group.parentId;
      const parent = parentId === undefined ? undefined : records.get(parentId);
      if (parentId !== undefined && parent?.group.subgroupIds.includes(groupId)) {
        // On the parent as it is now: another instance may have written it since it was read.
        await this.store.updateGroup(networkId, parentId, (current) =>
          current?.group.subgroupIds.includes(groupId)
            ? {
                ...current,
                group: { ...current.group, subgroupIds: current.group.subgroupIds.filter((id) => id !== groupId) },
              }
            : null,
        );
      }
      return { removed: present.filter((id) => !emptied.has(id)), emptied: [...emptied] };
    });
    for (const id of outcome.removed) this.options.onChange(networkId, id, 'deleted');
    for (const id of outcome.emptied) this.options.onChange(networkId, id, 'updated');
    return outcome.removed;
  }

  async applyNetworkSave(
    networkId: string,
    state: NetworkState,
    origin: WriteOrigin,
  ): Promise<NetworkSaveOutcome | null> {
    validateNetworkId(networkId);
    checkOrigin(origin);
    validateNetworkState(state, this.maxContentBytes);
    const copy = clone(state);
    await this.options.open('saveNetworkState');
    this.clock.observe(origin.stamp);
    const outcome = await this.inNetwork(networkId, async () => {
      const existing = await this.store.getNetwork(networkId);
      if (existing?.stamp !== undefined && compareStamps(existing.stamp, origin.stamp) > 0) return null;
      if (existing?.deletedStamp !== undefined && compareStamps(existing.deletedStamp, origin.stamp) > 0) return null;
      const now = new Date();
      let superseded = false;
      const stored = await this.updateNetwork(networkId, (current) => {
        superseded =
          (current?.stamp !== undefined && compareStamps(current.stamp, origin.stamp) > 0) ||
          (current?.deletedStamp !== undefined && compareStamps(current.deletedStamp, origin.stamp) > 0);
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
      const saving = [...copy.groups].filter(([groupId]) => !isTombstoned(record, groupId, origin.stamp));
      // With a bulk store, every group is read in one request and written in one more.
      const bulk = this.store.bulk;
      const before = bulk ? await bulk.readGroups(networkId) : undefined;
      let written: string[];
      if (bulk && before) {
        const writes: GroupWrite[] = [];
        written = [];
        for (const [groupId, groupState] of saving) {
          const write = planGroupWrite(groupId, groupState, origin.stamp, before.get(groupId) ?? NOTHING_STORED);
          if (!write) continue;
          writes.push(write);
          written.push(groupId);
        }
        await bulk.writeGroups(networkId, writes);
      } else {
        const saved = await mapWithConcurrency(saving, this.writeConcurrency, ([groupId, groupState]) =>
          this.writeGroup(networkId, groupId, groupState, origin.stamp),
        );
        written = saving.filter((_, i) => saved[i]).map(([groupId]) => groupId);
      }
      const left = new Map<string, GroupRecord | null>();
      const listed = before
        ? [...before].filter(([, group]) => group.record !== null).map(([id]) => id)
        : await this.store.listGroupIds(networkId);
      for (const id of listed) {
        if (copy.groups.has(id)) continue;
        const record = before ? before.get(id)!.record : await this.store.getGroup(networkId, id);
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
    for (const id of outcome.written) this.options.onChange(networkId, id, 'updated');
    for (const id of outcome.removed) this.options.onChange(networkId, id, 'deleted');
    return outcome;
  }

  async applyNetworkDelete(networkId: string, origin: WriteOrigin): Promise<string[] | null> {
    validateNetworkId(networkId);
    checkOrigin(origin);
    await this.options.open('deleteNetwork');
    this.clock.observe(origin.stamp);
    const groups = await this.inNetwork(networkId, async () => {
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
        const newest = [record?.deletedStamp, current?.deletedStamp, origin.stamp].filter(
          (stamp): stamp is string => stamp !== undefined,
        );
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
    for (const id of groups) this.options.onChange(networkId, id, 'deleted');
    return groups;
  }

  // ---- internals

  /** A unit of writes to one group: atomic in the store, one at a time per group in this process. */
  private inGroup<T>(networkId: string, groupId: string, work: () => Promise<T>): Promise<T> {
    return this.store.atomically({ kind: 'group', networkId, groupId }, () =>
      this.locks.networks.read(networkId, () => this.locks.groups.run(changePath(networkId, groupId), work)),
    );
  }

  /** A unit of writes anywhere in the network: atomic in the store, excluding every other write to the network in this process. */
  private inNetwork<T>(networkId: string, work: () => Promise<T>): Promise<T> {
    return this.store.atomically({ kind: 'network', networkId }, () => this.locks.networks.write(networkId, work));
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
    let [network, existing] = await Promise.all([
      this.store.getNetwork(networkId, { cached }),
      this.store.getGroup(networkId, groupId, { cached }),
    ]);
    // No group record: maybe deleted elsewhere since the network record was cached, so its tombstone must be read.
    if (cached && !existing) network = await this.store.getNetwork(networkId);
    if (supersededByDelete(network, groupId, stamp)) return null;
    const visited = new Set<string>([groupId]);
    for (let parent = options.parentId; parent !== undefined && !visited.has(parent);) {
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
        const revived: NetworkRecord = {
          ...(current ?? {}),
          id: networkId,
          rootGroupId: groupId,
          currentGroupId: groupId,
          createdAt: now,
          updatedAt: now,
        };
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
      const network = current ?? {
        id: networkId,
        rootGroupId: '',
        currentGroupId: '',
        createdAt: now,
        updatedAt: now,
        deleted: true,
      };
      const tombstones = pruneTombstones({ ...network.tombstones });
      for (const id of groupIds) {
        const previous = tombstones[id];
        if (previous === undefined || compareStamps(stamp, previous) > 0) tombstones[id] = stamp;
      }
      return { ...network, tombstones };
    });
  }

  /**
   * Read-modify-write of the network record through the store's atomic update, so instances
   * sharing the store never lose each other's tombstones; `update` may run more than once.
   * Resolves with the record as it is afterwards.
   */
  private async updateNetwork(
    networkId: string,
    update: (current: NetworkRecord | null) => NetworkRecord | null,
  ): Promise<NetworkRecord | null> {
    let result: NetworkRecord | null = null;
    await this.store.updateNetwork(networkId, (current) => {
      const next = update(current);
      result = next ?? current;
      return next;
    });
    return result;
  }

  /**
   * Replaces a group as of `stamp`, rebasing every contact on what `state` gives it (see
   * `rebaseContact`); contacts first, so a crash leaves no record pointing at missing contacts.
   */
  private async writeGroup(networkId: string, groupId: string, state: GroupState, stamp: string): Promise<boolean> {
    const bulk = this.store.bulk;
    const stored: StoredGroup = bulk
      ? ((await bulk.readGroups(networkId, [groupId])).get(groupId) ?? NOTHING_STORED)
      : {
          record: await this.store.getGroup(networkId, groupId),
          contacts: await this.store.listContacts(networkId, groupId),
        };
    const write = planGroupWrite(groupId, state, stamp, stored);
    if (!write) return false;
    if (bulk) {
      await bulk.writeGroups(networkId, [write]);
      return true;
    }
    await mapWithConcurrency(write.putContacts, this.writeConcurrency, (contact) =>
      this.store.putContact(networkId, groupId, contact),
    );
    await this.store.putGroup(networkId, write.record);
    for (const id of write.deleteContactIds) await this.store.deleteContact(networkId, groupId, id);
    return true;
  }

  /**
   * Removes a group as of `stamp`, except the contacts written after it: those stay, in an empty
   * group stamped `stamp` (as a write after the removal would have created it). True when the
   * group is gone.
   */
  private async removeGroupAsOf(
    networkId: string,
    groupId: string,
    record: GroupRecord | undefined,
    stamp: string,
  ): Promise<boolean> {
    if (!(await this.hasWritesAfter(networkId, groupId, record, stamp))) {
      await this.store.deleteGroup(networkId, groupId);
      return true;
    }
    await this.writeGroup(networkId, groupId, emptyGroupState(groupId), stamp);
    return false;
  }

  private async hasWritesAfter(
    networkId: string,
    groupId: string,
    record: GroupRecord | undefined,
    stamp: string,
  ): Promise<boolean> {
    const singles = new Map((await this.store.listContacts(networkId, groupId)).map((c) => [c.id, c] as const));
    const contacts = mergeContacts(record?.contacts, singles);
    return [...contacts.values()].some(
      (contact) => rebaseContact(contact, null, stamp, { contactId: contact.id, groupId }) !== null,
    );
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
  private async deleteNetworkExceptLater(
    networkId: string,
    groupIds: readonly string[],
    stamp: string,
  ): Promise<string[]> {
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
      const deletedStamp =
        base.deletedStamp !== undefined && compareStamps(base.deletedStamp, stamp) > 0 ? base.deletedStamp : stamp;
      const root = remaining.includes(base.rootGroupId) ? base.rootGroupId : [...remaining].sort()[0]!;
      const currentGroupId = remaining.includes(base.currentGroupId) ? base.currentGroupId : root;
      const next: NetworkRecord = { ...base, rootGroupId: root, currentGroupId, updatedAt: now, deletedStamp };
      delete next.deleted;
      delete next.stamp;
      return next;
    });
    return removed;
  }
}

const NOTHING_STORED: StoredGroup = { record: null, contacts: [] };

/**
 * What replacing a group as of `stamp` writes, from what is stored of it; `null` when a newer
 * whole-group operation makes the replacement moot. Every contact is rebased on what `state`
 * gives it (see `rebaseContact`).
 */
function planGroupWrite(groupId: string, state: GroupState, stamp: string, stored: StoredGroup): GroupWrite | null {
  const { record } = stored;
  if (record?.stamp !== undefined && compareStamps(record.stamp, stamp) > 0) return null;
  const packed = record?.contacts ?? new Map<string, StoredContact>();
  const singles = new Map(stored.contacts.map((c) => [c.id, c] as const));
  const existing = mergeContacts(packed, singles);
  // Packed contacts written after this save and kept as they are stay packed; the rest are now stored one by one.
  const keptPacked = new Map<string, StoredContact>();
  const putContacts: StoredContact[] = [];
  const deleteContactIds: string[] = [];
  for (const id of mergeIds(state.contacts.keys(), existing.keys())) {
    const current = existing.get(id) ?? null;
    const next = rebaseContact(current, state.contacts.get(id) ?? null, stamp, { contactId: id, groupId });
    if (next === null) {
      if (singles.has(id)) deleteContactIds.push(id);
    } else if (next !== current) putContacts.push(next);
    else if (packed.get(id) === current) keptPacked.set(id, current);
  }
  const group = { ...state.group, contactIds: mergeIds(state.group.contactIds, state.contacts.keys()) };
  return {
    record: { group, wires: state.wires, stamp, ...(keptPacked.size ? { contacts: keptPacked } : {}) },
    putContacts,
    deleteContactIds,
  };
}

/** A write origin (stamp, writer, sequence number) as the contract requires it; throws `InvalidArgumentError`/`InvalidIdError`. */
export function checkOrigin(origin: WriteOrigin): void {
  if (!isStamp(origin.stamp))
    throw new InvalidArgumentError(`write stamp ${JSON.stringify(origin.stamp)} is not a clock stamp`);
  validateWriterId(origin.writerId);
  if (!Number.isSafeInteger(origin.seq) || origin.seq < 1)
    throw new InvalidArgumentError(`write seq must be a positive integer, not ${origin.seq}`);
}

export function checkIds(networkId: string, groupId: string, contactId?: string): void {
  validateNetworkId(networkId);
  validateGroupId(groupId);
  if (contactId !== undefined) validateContactId(contactId);
}

/** Tombstones live as long as Pub/Sub may still redeliver an older write (its 7-day retention). */
const TOMBSTONE_TTL_MS = 8 * 24 * 60 * 60 * 1000;

function pruneTombstones(tombstones: Record<string, string>, now = Date.now()): Record<string, string> {
  return Object.fromEntries(
    Object.entries(tombstones).filter(([, stamp]) => parseStamp(stamp).wallTime > now - TOMBSTONE_TTL_MS),
  );
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

function supersededOutcome(contactId: string, groupId: string, write: ContactWrite): BlendOutcome {
  return {
    contact: { id: contactId, groupId, blendMode: write.blendMode ?? 'accept-last' },
    contentChanged: false,
    duplicate: false,
    contradiction: false,
    superseded: true,
  };
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
