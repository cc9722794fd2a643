import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Bucket, Storage } from '@google-cloud/storage';
import { LRUCache } from 'lru-cache';
import { decode, deepEqual, encode } from '../codec';
import { CorruptDataError, InvalidArgumentError, StorageConflictError, StorageUnavailableError } from '../errors';
import { idToKey, keyToId } from '../ids';
import { createLogger, type Logger } from '../log';
import type { GroupQuery, SnapshotInfo, StoredContact as Contact } from '../model';
import { isBucketName } from '../bucket-name';
import { mapWithConcurrency } from '../util/concurrency';
import { resolveRetryPolicy, withRetry, type RetryOptions, type RetryPolicy } from './retry';
import { MediaDownloader } from './gcs-media';
import { digestOf, measured, SnapshotDigest } from './snapshot-stream';
import {
  applyGroupIndexChanges,
  emptyGroupIndex,
  hasAttributes,
  indexedMatches,
  isUnconstrained,
  isGroupIndex,
  type GroupIndexChange,
  type StoredGroupIndex,
} from './gcs-group-index';
import type {
  AtomicUnit,
  BulkGroupStore,
  ContactUpdate,
  GroupRecord,
  GroupUpdate,
  NetworkRecord,
  NetworkUpdate,
  RecordReadOptions,
  SnapshotWrite,
  StateStore,
  StoredGroup,
  GroupWrite,
} from './state-store';

export interface GcsStateStoreOptions {
  /** An existing bucket; `init()` fails naming it when it is missing (unless `createBucketIfMissing`). */
  bucket: string;
  /** Object name prefix everything lives under; a trailing "/" is added when missing. Default: none. */
  prefix?: string;
  /**
   * The client to use; default `new Storage({ retryOptions: { autoRetry: false } })`. This store
   * retries on its own (`retry`), so a client passed in should have `autoRetry: false` too, or
   * the two kinds of retries stack.
   */
  storage?: Storage;
  /** Create the bucket in `init()` when it does not exist (default false). */
  createBucketIfMissing?: boolean;
  /** Backoff for 412 compare-and-set races and 408/429/5xx answers. */
  retry?: RetryOptions;
  /** Downloads or deletes in flight at once for one listing (default 16). */
  concurrency?: number;
  /** Objects per listing page (default 1000, the service's maximum); smaller only to test paging. */
  listPageSize?: number;
  /**
   * Bytes of network and group records kept from what this store read or wrote, with their
   * generations, for reads that ask for `cached` (default 64 MiB; 0 keeps none).
   */
  recordCacheBytes?: number;
  logger?: Logger;
}

/** What the store's retries ran into since it was created; for tests, benchmarks and metrics. */
export interface GcsStoreCounters {
  /** Compare-and-set writes refused with 412 because another writer got there first. */
  preconditionFailures: number;
  /** Requests refused with 429 (rate limit, e.g. about one write per second per object). */
  rateLimited: number;
  /** Requests that failed with another transient status (408, 5xx) or a reset connection. */
  transientFailures: number;
  /** Waits before another try, all causes together. */
  retries: number;
  /** Record reads answered from the record cache, without a request. */
  cachedReads: number;
}

export const DEFAULT_GCS_CONCURRENCY = 16;
export const DEFAULT_RECORD_CACHE_BYTES = 64 * 1024 * 1024;
const MAX_PREFIX_BYTES = 256;
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_SOCKET_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);
const LIST_FIELDS = 'items(name,generation),prefixes,nextPageToken';
/** Up to this many groups asked for are listed each on its own; more, as one range of names. */
const FEW_GROUPS = 4;
/** Networks whose index object is kept from the last read or write, to start the next compare-and-set from. */
const INDEX_COPIES = 64;

interface StoredObject {
  data: Buffer;
  /** The object generation the bytes belong to, for `ifGenerationMatch`. */
  generation: string;
}

interface CachedRecord extends StoredObject {
  /** For a group record: a listing found no contact stored on its own while the record was at this generation. */
  noSingles?: boolean;
  /** There was no such object when last read (generation '0', no data): a create-only write can start from that. */
  absent?: boolean;
}

function entriesAsChanges(index: StoredGroupIndex): GroupIndexChange[] {
  return [...index.groups].map(([groupId, entry]) => ({ kind: 'put', groupId, ...entry }));
}

interface IndexQueue {
  changes: GroupIndexChange[];
  waiters: Array<{ resolve(): void; reject(error: unknown): void }>;
}

interface ListResponse {
  items?: Array<{ name: string; generation?: string }>;
  prefixes?: string[];
  nextPageToken?: string;
}

/**
 * Bassline's filesystem layout as object names under `prefix`, ids encoded by `idToKey` (one
 * name segment each, no "/" or "."):
 *
 *     networks/{network}/metadata.json
 *     networks/{network}/index.json                      the groups' attributes, for queries (gcs-group-index.ts)
 *     networks/{network}/groups/{group}/group.json
 *     networks/{network}/groups/{group}/contacts/{contact}.json
 *     networks/{network}/snapshots/{snapshot}.json       the network state
 *     networks/{network}/snapshots/{snapshot}.info.json  its SnapshotInfo, for cheap listing
 *
 * One object per contact because Cloud Storage sustains only about one write per second to one
 * object name: writes to different contacts of a hot group land on different names, and the
 * group and network records are written only when created and on whole-group or network saves.
 * Contact writes are compare-and-set on the object generation (`ifGenerationMatch`), which makes
 * them safe between processes (Cloud Function instances) sharing the bucket; listings and reads
 * are strongly consistent, so a write is visible to every reader once it has returned.
 */
export class GcsStateStore implements StateStore {
  readonly bucketName: string;
  /** Normalized: empty, or ending in "/". */
  readonly prefix: string;
  readonly counters: GcsStoreCounters = {
    preconditionFailures: 0,
    rateLimited: 0,
    transientFailures: 0,
    retries: 0,
    cachedReads: 0,
  };
  private client: Storage | undefined;
  private bucketHandle: Bucket | undefined;
  private downloader: MediaDownloader | undefined;
  private readonly createBucketIfMissing: boolean;
  private readonly policy: RetryPolicy;
  private readonly concurrency: number;
  private readonly listPageSize: number;
  /** Network and group records by object name, as last read or written here, with their generation. */
  private readonly records: LRUCache<string, CachedRecord> | undefined;
  /** Index objects by name, as last read or written here, with their generation. */
  private readonly indexCopies = new LRUCache<string, StoredObject>({ max: INDEX_COPIES });
  /** Index changes per network waiting for the next compare-and-set of its index object. */
  private readonly indexQueues = new Map<string, IndexQueue>();
  /** Networks whose index object is being written now: one compare-and-set at a time per network. */
  private readonly indexWriting = new Set<string>();
  private readonly log: Logger;

  constructor(options: GcsStateStoreOptions) {
    if (!options || typeof options !== 'object')
      throw new InvalidArgumentError('GcsStateStore needs options with { bucket }');
    this.bucketName = validateBucketName(options.bucket);
    this.prefix = normalizePrefix(options.prefix);
    this.client = options.storage;
    this.createBucketIfMissing = options.createBucketIfMissing ?? false;
    this.policy = resolveRetryPolicy(options.retry);
    this.concurrency = positiveInteger(options.concurrency ?? DEFAULT_GCS_CONCURRENCY, 'concurrency');
    this.listPageSize = positiveInteger(options.listPageSize ?? 1000, 'listPageSize');
    const cacheBytes = options.recordCacheBytes ?? DEFAULT_RECORD_CACHE_BYTES;
    if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0)
      throw new InvalidArgumentError(
        `recordCacheBytes must be a whole number of bytes, not ${JSON.stringify(cacheBytes)}`,
      );
    this.records =
      cacheBytes > 0
        ? new LRUCache<string, CachedRecord>({
            maxSize: cacheBytes,
            sizeCalculation: (value, name) => value.data.length + name.length + 64,
          })
        : undefined;
    this.log = options.logger ?? createLogger('gcs-store');
  }

  async init(): Promise<void> {
    // Loaded on first use, so importing the library does not load the Cloud Storage client.
    this.client ??= new (await import('@google-cloud/storage')).Storage({ retryOptions: { autoRetry: false } });
    const bucket = this.client.bucket(this.bucketName);
    const [exists] = await this.retrying('check that bucket exists', `gs://${this.bucketName}`, () => bucket.exists());
    if (!exists) {
      if (!this.createBucketIfMissing) {
        throw new InvalidArgumentError(
          `Cloud Storage bucket ${JSON.stringify(this.bucketName)} (option bucket) does not exist; create it first or pass createBucketIfMissing: true`,
        );
      }
      try {
        await this.client.createBucket(this.bucketName);
        this.log.info('created bucket', { bucket: this.bucketName });
      } catch (error) {
        if (statusOf(error) !== 409) throw error; // 409: created meanwhile by someone else
      }
    }
    this.bucketHandle = bucket;
    this.downloader ??= new MediaDownloader(this.client);
  }

  async close(): Promise<void> {
    this.downloader?.close();
  }

  /** Runs `work` as it is: Cloud Storage has no transactions; each `update*` is a compare-and-set of its own. */
  atomically<T>(_unit: AtomicUnit, work: () => Promise<T>): Promise<T> {
    return work();
  }

  // ---- networks

  async getNetwork(networkId: string, options?: RecordReadOptions): Promise<NetworkRecord | null> {
    return this.readRecord<NetworkRecord>(this.networkRecordName(networkId), options);
  }

  async putNetwork(record: NetworkRecord): Promise<void> {
    await this.writeRecord(this.networkRecordName(record.id), record);
  }

  /** Compare-and-set on the record's generation, like `updateGroup`. */
  async updateNetwork(networkId: string, update: NetworkUpdate): Promise<void> {
    await this.compareAndSet<NetworkRecord>(
      this.networkRecordName(networkId),
      `update network ${JSON.stringify(networkId)} at`,
      update,
      { cache: true },
    );
  }

  async listNetworkIds(): Promise<string[]> {
    const base = `${this.prefix}networks/`;
    const { prefixes } = await this.list(base, '/');
    return this.idsOfKeys(
      prefixes.map((p) => p.slice(base.length, -1)),
      async (key) => (await this.readJson<NetworkRecord>(`${base}${key}/metadata.json`))?.id,
    );
  }

  async deleteNetwork(networkId: string): Promise<void> {
    this.indexCopies.delete(this.indexName(networkId));
    await this.deleteAllUnder(this.networkPrefix(networkId), this.networkRecordName(networkId));
  }

  // ---- groups

  async getGroup(networkId: string, groupId: string, options?: RecordReadOptions): Promise<GroupRecord | null> {
    return this.readRecord<GroupRecord>(this.groupRecordName(networkId, groupId), options);
  }

  async putGroup(networkId: string, record: GroupRecord): Promise<void> {
    const name = this.groupRecordName(networkId, record.group.id);
    const generation = (await this.writeRecord(name, record)) ?? (await this.generationOf(name));
    const { id, attributes } = record.group;
    if (generation !== undefined)
      await this.indexGroup(networkId, { kind: 'put', groupId: id, generation, attributes });
  }

  /**
   * A group is listed when anything is stored under its name (its record, or contacts written
   * before it). Ids come from the names without reads, except for shortened (hashed) names,
   * whose record is read; callers treat a listed group without a record as absent.
   */
  async listGroupIds(networkId: string): Promise<string[]> {
    const base = `${this.networkPrefix(networkId)}groups/`;
    const { prefixes } = await this.list(base, '/');
    return this.idsOfKeys(
      prefixes.map((p) => p.slice(base.length, -1)),
      async (key) => (await this.readJson<GroupRecord>(`${base}${key}/group.json`))?.group.id,
    );
  }

  /**
   * Many groups read from one listing of their objects instead of a listing per group, and written
   * group by group as `putContact`/`putGroup`/`deleteContact` would, several groups at once. Cloud
   * Storage has no transactions: as `atomically`, the writes are not all or nothing across groups
   * (each object write is); a write cut short is repaired by its event's redelivery.
   */
  readonly bulk: BulkGroupStore = {
    readGroups: (networkId, groupIds) => this.readGroups(networkId, groupIds),
    writeGroups: (networkId, writes) => this.writeGroups(networkId, writes),
  };

  /**
   * Of `groupIds` (all when absent), the groups stored with a record or contacts, by id: one listing
   * of the objects under the groups (a name range covering the ids asked for; a few groups are
   * listed each on its own), then the records and contacts found downloaded `concurrency` at a time.
   */
  async readGroups(networkId: string, groupIds?: readonly string[]): Promise<Map<string, StoredGroup>> {
    const base = `${this.networkPrefix(networkId)}groups/`;
    const wanted = groupIds && new Map(groupIds.map((id) => [idToKey(id), id] as const));
    let names: string[];
    if (!wanted) {
      names = (await this.list(base)).names;
    } else if (wanted.size === 0) {
      return new Map();
    } else if (wanted.size <= FEW_GROUPS) {
      names = (await Promise.all([...wanted.keys()].map((key) => this.list(`${base}${key}/`)))).flatMap((l) => l.names);
    } else {
      const keys = [...wanted.keys()].sort();
      // '0' follows '/': the range ends after every object of the last key.
      names = (await this.list(base, undefined, { start: `${base}${keys[0]}/`, end: `${base}${keys.at(-1)}0` })).names;
    }
    const objects = new Map<string, { record?: string; contacts: string[] }>();
    for (const name of names) {
      const rest = name.slice(base.length);
      const slash = rest.indexOf('/');
      const key = rest.slice(0, slash);
      const within = rest.slice(slash + 1);
      if (slash <= 0 || (wanted && !wanted.has(key))) continue;
      let entry = objects.get(key);
      if (!entry) objects.set(key, (entry = { contacts: [] }));
      if (within === 'group.json') entry.record = name;
      else if (within.startsWith('contacts/') && within.endsWith('.json') && !within.slice(9).includes('/'))
        entry.contacts.push(name);
    }
    const reads = [...objects].flatMap(([key, entry]) => [
      ...(entry.record ? [{ key, name: entry.record, record: true }] : []),
      ...entry.contacts.map((name) => ({ key, name, record: false })),
    ]);
    const read = await mapWithConcurrency(reads, this.concurrency, (object) => this.read(object.name));
    const groups = new Map<string, { id?: string; record: GroupRecord | null; contacts: Contact[] }>();
    reads.forEach(({ key, name, record }, i) => {
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { id: wanted?.get(key) ?? decodeKey(key), record: null, contacts: [] }));
      const stored = read[i];
      if (record) this.rememberRecord(name, stored ?? null);
      // Deleted between the listing and its download: as if it had not been listed.
      if (!stored) return;
      if (record) {
        group.record = this.decodeObject<GroupRecord>(name, stored.data);
        group.id ??= group.record.group.id;
      } else {
        const contact = this.decodeObject<Contact>(name, stored.data);
        group.contacts.push(contact);
        group.id ??= contact.groupId;
      }
    });
    const out = new Map<string, StoredGroup>();
    for (const { id, record, contacts } of groups.values())
      if (id !== undefined && (record || contacts.length > 0)) out.set(id, { record, contacts });
    return out;
  }

  /** Each group as `putContact` for its contacts, then `putGroup`, then `deleteContact`: contacts first, so a record never names missing ones. */
  async writeGroups(networkId: string, writes: readonly GroupWrite[]): Promise<void> {
    await mapWithConcurrency(writes, this.concurrency, async (write) => {
      const groupId = write.record.group.id;
      await mapWithConcurrency(write.putContacts, this.concurrency, (contact) =>
        this.putContact(networkId, groupId, contact),
      );
      await this.putGroup(networkId, write.record);
      await mapWithConcurrency(write.deleteContactIds, this.concurrency, (contactId) =>
        this.deleteContact(networkId, groupId, contactId),
      );
    });
  }

  async deleteGroup(networkId: string, groupId: string): Promise<void> {
    const generation = await this.deleteAllUnder(
      this.groupPrefix(networkId, groupId),
      this.groupRecordName(networkId, groupId),
    );
    await this.indexGroup(networkId, { kind: 'delete', groupId, ...(generation !== undefined && { generation }) });
  }

  // ---- the group index (gcs-group-index.ts)

  /**
   * Ids of the groups whose record may match `query`, ascending, from the network's index object:
   * one read instead of one per group. An index that is lost, corrupt or incomplete is rebuilt
   * first from the group records (and written back). The index can only be behind the records a
   * moment (a write is indexed before it returns), so callers check each group they read.
   */
  async queryGroupIds(networkId: string, query: GroupQuery): Promise<string[]> {
    if (isUnconstrained(query)) return (await this.listGroupIds(networkId)).sort();
    const name = this.indexName(networkId);
    const stored = await this.read(name);
    const index = stored ? this.decodeIndex(name, stored.data) : null;
    if (stored && index?.complete) {
      this.indexCopies.set(name, stored);
      return indexedMatches(index, query);
    }
    return indexedMatches(await this.rebuildGroupIndex(networkId, stored?.generation ?? '0'), query);
  }

  /**
   * Reads every group record of the network and writes the index they make, unless the index
   * changed since it was read at `generation`: then the records read are merged into it (entries
   * keep the newest record generation either way). A network without groups gets no index
   * object, so a query of a missing network writes nothing.
   */
  async rebuildGroupIndex(networkId: string, generation: string): Promise<StoredGroupIndex> {
    const name = this.indexName(networkId);
    const { ids, index: rebuilt } = await this.scanGroupIndex(networkId);
    if (ids.length === 0) return rebuilt;
    this.log.info('rebuilt the group index of a network', { networkId, groups: rebuilt.groups.size });
    let base = generation;
    let result = rebuilt;
    let attempts = 0;
    try {
      await withRetry(
        async (attempt) => {
          attempts = attempt;
          const text = encode(result);
          try {
            const written = await this.upload(name, text, base);
            if (written !== undefined) this.indexCopies.set(name, { data: Buffer.from(text), generation: written });
          } catch (error) {
            this.indexCopies.delete(name);
            if (statusOf(error) !== 412) throw error;
            // Written meanwhile (a group write): merge what was read into the index as it is now.
            const current = await this.download(name);
            base = current?.generation ?? '0';
            result = (current && this.decodeIndex(name, current.data)) ?? emptyGroupIndex();
            applyGroupIndexChanges(result, entriesAsChanges(rebuilt));
            result.complete = true;
            throw error;
          }
        },
        this.retryControl('write group index', name, (error) => statusOf(error) === 412 || isTransient(error)),
      );
    } catch (error) {
      throw this.wrap('write group index', name, error, attempts);
    }
    return result;
  }

  /** The index the network's group records make now, and the groups listed. */
  private async scanGroupIndex(networkId: string): Promise<{ ids: string[]; index: StoredGroupIndex }> {
    const ids = await this.listGroupIds(networkId);
    const changes = await mapWithConcurrency(
      ids,
      this.concurrency,
      async (groupId): Promise<GroupIndexChange | null> => {
        const recordName = this.groupRecordName(networkId, groupId);
        const stored = await this.read(recordName);
        if (!stored) return null;
        const { group } = this.decodeObject<GroupRecord>(recordName, stored.data);
        return { kind: 'put', groupId: group.id, generation: stored.generation, attributes: group.attributes };
      },
    );
    const index = emptyGroupIndex();
    applyGroupIndexChanges(
      index,
      changes.filter((c): c is GroupIndexChange => c !== null),
    );
    return { ids, index };
  }

  /** The index as stored, or null when it is not one (corrupt, or written by something else). */
  private decodeIndex(name: string, data: Buffer): StoredGroupIndex | null {
    try {
      const index = decode<unknown>(data);
      if (isGroupIndex(index)) return index;
    } catch {
      // treated as lost below
    }
    this.log.warn('group index unreadable; it is rebuilt', { object: name });
    return null;
  }

  /**
   * Queues `change` for the network's index and resolves once it is written. Changes arriving while
   * a write of the index is in flight go together in the next one, so many group writes at once
   * cost a few index writes, not one each.
   */
  private indexGroup(networkId: string, change: GroupIndexChange): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let queue = this.indexQueues.get(networkId);
      if (!queue) this.indexQueues.set(networkId, (queue = { changes: [], waiters: [] }));
      queue.changes.push(change);
      queue.waiters.push({ resolve, reject });
      if (!this.indexWriting.has(networkId)) {
        this.indexWriting.add(networkId);
        void this.drainIndexQueue(networkId);
      }
    });
  }

  private async drainIndexQueue(networkId: string): Promise<void> {
    for (;;) {
      const queue = this.indexQueues.get(networkId);
      if (!queue) {
        this.indexWriting.delete(networkId);
        return;
      }
      this.indexQueues.delete(networkId);
      try {
        await this.writeIndexChanges(networkId, queue.changes);
        for (const waiter of queue.waiters) waiter.resolve();
      } catch (error) {
        for (const waiter of queue.waiters) waiter.reject(error);
      }
    }
  }

  /**
   * One compare-and-set of the index object with `changes`, starting from the copy kept here (a
   * 412 means someone else wrote it: read it and apply again). Where there is no index (no group
   * had attributes yet) or it is unreadable, it is made from the group records first.
   */
  private async writeIndexChanges(networkId: string, changes: GroupIndexChange[]): Promise<void> {
    const name = this.indexName(networkId);
    let attempts = 0;
    try {
      await withRetry(
        async (attempt) => {
          attempts = attempt;
          const stored = (attempt === 1 ? this.indexCopies.get(name) : undefined) ?? (await this.download(name));
          let index = stored ? this.decodeIndex(name, stored.data) : null;
          let changed = false;
          if (!index) {
            // Without attributes to record, no index is needed yet: a group without them matches no query that reads it.
            if (!stored && !changes.some((c) => c.kind === 'put' && hasAttributes(c.attributes))) return;
            // The first group with attributes, or a lost index: start from what the records say now.
            index = (await this.scanGroupIndex(networkId)).index;
            changed = true;
          }
          changed = applyGroupIndexChanges(index, changes) || changed;
          if (!changed) return;
          const text = encode(index);
          try {
            const written = await this.upload(name, text, stored?.generation ?? '0');
            if (written === undefined) this.indexCopies.delete(name);
            else this.indexCopies.set(name, { data: Buffer.from(text), generation: written });
          } catch (error) {
            this.indexCopies.delete(name);
            throw error;
          }
        },
        this.retryControl('update group index', name, (error) => statusOf(error) === 412 || isTransient(error)),
      );
    } catch (error) {
      throw this.wrap('update group index', name, error, attempts);
    }
  }

  /** The object's generation from its metadata; for the rare answer to an upload that did not carry it. */
  private async generationOf(name: string): Promise<string | undefined> {
    const [metadata] = await this.retrying('read metadata of', name, () => this.bucket.file(name).getMetadata());
    return metadata.generation === undefined || metadata.generation === null ? undefined : String(metadata.generation);
  }

  // ---- contacts

  async getContact(networkId: string, groupId: string, contactId: string): Promise<Contact | null> {
    return this.readJson<Contact>(this.contactName(networkId, groupId, contactId));
  }

  async listContacts(networkId: string, groupId: string): Promise<Contact[]> {
    const { names } = await this.list(`${this.groupPrefix(networkId, groupId)}contacts/`);
    const contacts = await mapWithConcurrency(
      names.filter((name) => name.endsWith('.json')),
      this.concurrency,
      (name) => this.readJson<Contact>(name),
    );
    // A contact deleted between the listing and its download reads as null.
    return contacts.filter((c): c is Contact => c !== null);
  }

  /**
   * One listing of the group's contact names, then downloads of only the ones asked for. With
   * `cached`, a group whose cached record was listed without any is answered without a request:
   * contacts are stored on their own only by this store's `putContact`/`updateContact` (which
   * forget that) or by a whole-group save, which also writes the record (a new generation).
   */
  async getContacts(
    networkId: string,
    groupId: string,
    contactIds: readonly string[],
    options?: RecordReadOptions,
  ): Promise<Contact[]> {
    if (contactIds.length === 0) return [];
    const record = this.records?.get(this.groupRecordName(networkId, groupId));
    if (options?.cached && record?.noSingles) {
      this.counters.cachedReads++;
      return [];
    }
    const wanted = new Set(contactIds.map((id) => this.contactName(networkId, groupId, id)));
    const { names } = await this.list(`${this.groupPrefix(networkId, groupId)}contacts/`);
    // Still the record of the same generation: the listing speaks for it.
    if (
      names.length === 0 &&
      record &&
      !record.absent &&
      this.records?.get(this.groupRecordName(networkId, groupId)) === record
    )
      record.noSingles = true;
    const contacts = await mapWithConcurrency(
      names.filter((name) => wanted.has(name)),
      this.concurrency,
      (name) => this.readJson<Contact>(name),
    );
    return contacts.filter((c): c is Contact => c !== null);
  }

  async putContact(networkId: string, groupId: string, contact: Contact): Promise<void> {
    this.forgetNoSingles(networkId, groupId);
    await this.writeJson(this.contactName(networkId, groupId, contact.id), contact);
  }

  /**
   * Compare-and-set: reads the contact and its generation, writes `update(current)` only if the
   * object is still at that generation (absent: generation 0), and on 412 reads and updates
   * again, after a jittered backoff. 429/5xx answers retry the same write. Gives up with
   * `StorageConflictError` after `retry.maxAttempts` tries (`StorageUnavailableError` when the last
   * answer was a 429 or 5xx).
   */
  async updateContact(networkId: string, groupId: string, contactId: string, update: ContactUpdate): Promise<void> {
    this.forgetNoSingles(networkId, groupId);
    await this.compareAndSet<Contact>(
      this.contactName(networkId, groupId, contactId),
      `update contact ${JSON.stringify(contactId)} of group ${JSON.stringify(groupId)} at`,
      update,
    );
  }

  /**
   * Compare-and-set like `updateContact`. With `cached` it starts from the cached record and its
   * generation, without a download; when another writer changed the record since (412), it reads
   * the record again and calls `update` once more, at once.
   */
  async updateGroup(
    networkId: string,
    groupId: string,
    update: GroupUpdate,
    options?: RecordReadOptions,
  ): Promise<void> {
    const name = this.groupRecordName(networkId, groupId);
    const what = `update group ${JSON.stringify(groupId)} at`;
    const hit = options?.cached ? this.records?.get(name) : undefined;
    if (hit) {
      this.counters.cachedReads++;
      const previous = hit.absent ? null : this.decodeObject<GroupRecord>(name, hit.data);
      const next = update(previous);
      if (next === null) return;
      const text = encode(next);
      let written: { generation: string | undefined } | undefined;
      try {
        written = { generation: await this.upload(name, text, hit.generation) };
        // Writing the record stores no contact on its own: what the listing said still holds.
        this.cacheRecord(name, text, written.generation, hit.noSingles);
      } catch (error) {
        this.records?.delete(name);
        if (statusOf(error) === 412) this.counters.preconditionFailures++;
        else if (!isTransient(error)) throw error;
      }
      if (written) return this.groupRecordWritten(networkId, name, previous, next, written.generation);
    }
    await this.compareAndSet<GroupRecord>(name, what, update, {
      cache: true,
      written: (previous, next, generation) => this.groupRecordWritten(networkId, name, previous, next, generation),
    });
  }

  /** Keeps the network's index in step with a record written over `previous`: only a change of attributes (or a new group) touches it. */
  private async groupRecordWritten(
    networkId: string,
    name: string,
    previous: GroupRecord | null,
    next: GroupRecord,
    generation: string | undefined,
  ): Promise<void> {
    const before = previous?.group.attributes;
    const after = next.group.attributes;
    if (hasAttributes(before) ? deepEqual(before, after) : !hasAttributes(after)) return;
    const written = generation ?? (await this.generationOf(name));
    if (written === undefined) return;
    await this.indexGroup(networkId, {
      kind: 'put',
      groupId: next.group.id,
      generation: written,
      attributes: next.group.attributes,
    });
  }

  /**
   * Read-modify-write of one object on its generation: `ifGenerationMatch` with the generation
   * read (0 when absent). On 412 someone else wrote it: read again and call `update` again.
   * With `cache`, the object is a record kept in the record cache.
   */
  private async compareAndSet<T>(
    name: string,
    what: string,
    update: (current: T | null) => T | null,
    {
      cache = false,
      written,
    }: {
      cache?: boolean;
      /** Called once the write is in, with what it replaced. */
      written?: (previous: T | null, next: T, generation: string | undefined) => Promise<void>;
    } = {},
  ): Promise<void> {
    let pending: { text: string; generation: string; previous: T | null; next: T; written?: string } | undefined;
    let attempts = 0;
    try {
      await withRetry(
        async (attempt) => {
          attempts = attempt;
          if (!pending) {
            const stored = await this.download(name);
            if (cache) this.rememberRecord(name, stored);
            const previous = stored ? this.decodeObject<T>(name, stored.data) : null;
            const next = update(previous);
            if (next === null) return;
            pending = { text: encode(next), generation: stored?.generation ?? '0', previous, next };
          }
          try {
            const generation = await this.upload(name, pending.text, pending.generation);
            pending.written = generation ?? '';
            if (cache) this.cacheRecord(name, pending.text, generation);
          } catch (error) {
            if (cache) this.records?.delete(name);
            // Another writer changed the object since it was read: start over from its new state.
            if (statusOf(error) === 412) pending = undefined;
            throw error;
          }
        },
        this.retryControl(what, name, (error) => statusOf(error) === 412 || isTransient(error)),
      );
    } catch (error) {
      throw this.wrap(what, name, error, attempts);
    }
    if (written && pending?.written !== undefined)
      await written(pending.previous, pending.next, pending.written === '' ? undefined : pending.written);
  }

  async deleteContact(networkId: string, groupId: string, contactId: string): Promise<void> {
    await this.deleteObject(this.contactName(networkId, groupId, contactId));
  }

  // ---- snapshots

  async putSnapshot(networkId: string, info: SnapshotInfo, payload: string): Promise<void> {
    const base = this.snapshotBase(networkId, info.id);
    // The state first: an info object is only ever written for a complete snapshot.
    await this.writeText(`${base}.json`, payload);
    await this.writeJson(`${base}.info.json`, info);
  }

  /**
   * The body is one streamed upload with `ifGenerationMatch: 0`, so an existing snapshot object is
   * never overwritten (412); the info object follows the same way. Memory stays at about one
   * piece of `chunks` plus the client's stream buffers, whatever the snapshot's size.
   */
  async putSnapshotStream(
    networkId: string,
    info: SnapshotInfo,
    chunks: AsyncIterable<string>,
  ): Promise<SnapshotWrite> {
    const existing = await this.getSnapshotInfo(networkId, info.id);
    if (existing) return { created: false, info: existing };
    const base = this.snapshotBase(networkId, info.id);
    const digest = new SnapshotDigest();
    const created = await this.uploadStreamCreateOnly(`${base}.json`, measured(chunks, digest));
    let stored: SnapshotInfo;
    if (created) {
      stored = { ...info, size: digest.size, sha256: digest.sha256() };
    } else {
      // A body without its info: a racing writer's or a crashed one's, complete since uploads
      // commit whole. Adopted as it is, dated by its object.
      const body = this.bucket.file(`${base}.json`);
      const [metadata] = await this.retrying('read metadata of', `${base}.json`, () => body.getMetadata());
      const bodyTime = metadata.timeCreated ? new Date(metadata.timeCreated) : undefined;
      stored = { ...info, ...(await digestOf(body.createReadStream())), ...(bodyTime && { createdAt: bodyTime }) };
    }
    if (!(await this.writeTextCreateOnly(`${base}.info.json`, encode(stored)))) {
      return { created: false, info: (await this.getSnapshotInfo(networkId, info.id)) ?? stored };
    }
    return { created, info: stored };
  }

  async getSnapshotInfo(networkId: string, snapshotId: string): Promise<SnapshotInfo | null> {
    return this.readJson<SnapshotInfo>(`${this.snapshotBase(networkId, snapshotId)}.info.json`);
  }

  async getSnapshot(networkId: string, snapshotId: string): Promise<string | null> {
    const base = this.snapshotBase(networkId, snapshotId);
    const [info, body] = await Promise.all([this.read(`${base}.info.json`), this.read(`${base}.json`)]);
    if (!info || !body) return null;
    return body.data.toString('utf8');
  }

  async listSnapshots(networkId: string): Promise<SnapshotInfo[]> {
    // Only the small info objects are read, never the snapshot bodies.
    const { names } = await this.list(`${this.networkPrefix(networkId)}snapshots/`);
    const infos = await mapWithConcurrency(
      names.filter((name) => name.endsWith('.info.json')),
      this.concurrency,
      (name) => this.readJson<SnapshotInfo>(name),
    );
    return infos.filter((info): info is SnapshotInfo => info !== null);
  }

  async deleteSnapshot(networkId: string, snapshotId: string): Promise<boolean> {
    const base = this.snapshotBase(networkId, snapshotId);
    // The info first, so a failure in between leaves no listed snapshot without its state.
    const existed = await this.deleteObject(`${base}.info.json`);
    await this.deleteObject(`${base}.json`);
    return existed;
  }

  /**
   * The newest `updated` time of the network's objects other than snapshots, from listings that
   * carry only names and times: no object is downloaded. Deletes are covered because every
   * delete of contacts or groups also rewrites a group or network record.
   */
  async lastChanged(networkId: string): Promise<Date | null> {
    const prefix = this.networkPrefix(networkId);
    const snapshots = `${prefix}snapshots/`;
    let newest = -Infinity;
    let pageToken: string | undefined;
    do {
      const page = await this.listPage<{ items?: Array<{ name: string; updated?: string }>; nextPageToken?: string }>(
        prefix,
        'items(name,updated),nextPageToken',
        pageToken,
      );
      for (const item of page.items ?? []) {
        if (item.name.startsWith(snapshots) || item.updated === undefined) continue;
        newest = Math.max(newest, Date.parse(item.updated));
      }
      pageToken = page.nextPageToken || undefined;
    } while (pageToken !== undefined);
    return Number.isFinite(newest) ? new Date(newest) : null;
  }

  /** One streamed (resumable) upload that only creates: false when the object exists. Not retried: `source` cannot be replayed. */
  private async uploadStreamCreateOnly(name: string, source: AsyncIterable<Buffer>): Promise<boolean> {
    const sink = this.bucket.file(name).createWriteStream({
      resumable: true,
      contentType: 'application/json',
      preconditionOpts: { ifGenerationMatch: 0 },
    });
    try {
      // Byte mode, so the stream pulls the next piece only when the last one has gone on.
      await pipeline(Readable.from(source, { objectMode: false }), sink);
      return true;
    } catch (error) {
      if (statusOf(error) === 412) {
        this.counters.preconditionFailures++;
        return false;
      }
      throw this.wrap('upload', name, error, 1);
    }
  }

  /** One small upload that only creates, retried on transient failures: false when the object exists. */
  private writeTextCreateOnly(name: string, text: string): Promise<boolean> {
    return this.retrying('write', name, async () => {
      try {
        await this.upload(name, text, '0');
        return true;
      } catch (error) {
        if (statusOf(error) !== 412) throw error;
        this.counters.preconditionFailures++;
        return false;
      }
    });
  }

  // ---- names

  private networkPrefix(networkId: string): string {
    return `${this.prefix}networks/${idToKey(networkId)}/`;
  }

  private indexName(networkId: string): string {
    return `${this.networkPrefix(networkId)}index.json`;
  }

  private networkRecordName(networkId: string): string {
    return `${this.networkPrefix(networkId)}metadata.json`;
  }

  private groupPrefix(networkId: string, groupId: string): string {
    return `${this.networkPrefix(networkId)}groups/${idToKey(groupId)}/`;
  }

  private groupRecordName(networkId: string, groupId: string): string {
    return `${this.groupPrefix(networkId, groupId)}group.json`;
  }

  private contactName(networkId: string, groupId: string, contactId: string): string {
    return `${this.groupPrefix(networkId, groupId)}contacts/${idToKey(contactId)}.json`;
  }

  private snapshotBase(networkId: string, snapshotId: string): string {
    return `${this.networkPrefix(networkId)}snapshots/${idToKey(snapshotId)}`;
  }

  // ---- objects

  private get bucket(): Bucket {
    if (!this.bucketHandle) throw new Error('GcsStateStore: init() must finish before the store is used');
    return this.bucketHandle;
  }

  /** Ids of name segments: decoded from the key when it is not shortened, else read from the record. */
  private async idsOfKeys(keys: string[], readId: (key: string) => Promise<string | undefined>): Promise<string[]> {
    const ids = await mapWithConcurrency(keys, this.concurrency, async (key) => decodeKey(key) ?? (await readId(key)));
    return ids.filter((id): id is string => id !== undefined);
  }

  /** A network or group record: from the record cache when `cached` asks for it and it has one, else downloaded and kept. */
  private async readRecord<T>(name: string, options?: RecordReadOptions): Promise<T | null> {
    const hit = options?.cached ? this.records?.get(name) : undefined;
    if (hit) {
      this.counters.cachedReads++;
      return hit.absent ? null : this.decodeObject<T>(name, hit.data);
    }
    const stored = await this.read(name);
    this.rememberRecord(name, stored);
    return stored ? this.decodeObject<T>(name, stored.data) : null;
  }

  /** Resolves with the generation written, when the answer carried it. */
  private async writeRecord(name: string, value: unknown): Promise<string | undefined> {
    const text = encode(value);
    try {
      const generation = await this.retrying('write', name, () => this.upload(name, text));
      this.cacheRecord(name, text, generation);
      return generation;
    } catch (error) {
      this.records?.delete(name);
      throw error;
    }
  }

  /** Keeps what a read found, absence included: a new group's first write then creates it without reading it again. */
  private rememberRecord(name: string, stored: StoredObject | null): void {
    this.records?.set(name, stored ?? { data: Buffer.alloc(0), generation: '0', absent: true });
  }

  /** Keeps what was just uploaded; without the generation the upload answered with, forgets the name instead. */
  private cacheRecord(name: string, text: string, generation: string | undefined, noSingles?: boolean): void {
    if (generation === undefined) this.records?.delete(name);
    else this.records?.set(name, { data: Buffer.from(text, 'utf8'), generation, ...(noSingles ? { noSingles } : {}) });
  }

  private forgetNoSingles(networkId: string, groupId: string): void {
    const record = this.records?.get(this.groupRecordName(networkId, groupId));
    if (record) delete record.noSingles;
  }

  private async readJson<T>(name: string): Promise<T | null> {
    const stored = await this.read(name);
    return stored ? this.decodeObject<T>(name, stored.data) : null;
  }

  private decodeObject<T>(name: string, data: Buffer): T {
    try {
      return decode<T>(data);
    } catch (error) {
      throw new CorruptDataError(`cannot read gs://${this.bucketName}/${name}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  private read(name: string): Promise<StoredObject | null> {
    return this.retrying('read', name, () => this.download(name));
  }

  private writeJson(name: string, value: unknown): Promise<void> {
    return this.writeText(name, encode(value));
  }

  private async writeText(name: string, text: string): Promise<void> {
    await this.retrying('write', name, () => this.upload(name, text));
  }

  /** One download, bytes and generation together; null when there is no such object. */
  private download(name: string): Promise<StoredObject | null> {
    if (!this.downloader) throw new Error('GcsStateStore: init() must finish before the store is used');
    return this.downloader.download(this.bucket.file(name));
  }

  /**
   * One upload in a single request; with `ifGenerationMatch` it fails with 412 unless the object
   * is at that generation. Resolves with the new generation, when the answer carried it.
   */
  private async upload(name: string, text: string, ifGenerationMatch?: string): Promise<string | undefined> {
    const file = this.bucket.file(name);
    await file.save(text, {
      resumable: false,
      contentType: 'application/json',
      ...(ifGenerationMatch !== undefined && { preconditionOpts: { ifGenerationMatch } }),
    });
    const generation = file.metadata?.generation;
    return generation === undefined || generation === null ? undefined : String(generation);
  }

  /** True when it deleted something, false when there was nothing to delete (or, with `ifGenerationMatch`, not that generation). */
  private async deleteObject(name: string, ifGenerationMatch?: string): Promise<boolean> {
    this.records?.delete(name);
    this.indexCopies.delete(name);
    return this.retrying('delete', name, async () => {
      try {
        await this.bucket.file(name).delete(ifGenerationMatch === undefined ? {} : { ifGenerationMatch });
        return true;
      } catch (error) {
        if (statusOf(error) === 404 || (ifGenerationMatch !== undefined && statusOf(error) === 412)) return false;
        throw error;
      }
    });
  }

  /**
   * Deletes every object under `prefix`, in parallel; `recordName` last, so a partial delete still
   * shows the record. Resolves with the generation of the record deleted, when one was listed.
   */
  private async deleteAllUnder(prefix: string, recordName: string): Promise<string | undefined> {
    for (const name of [...(this.records?.keys() ?? [])]) if (name.startsWith(prefix)) this.records!.delete(name);
    const { names, generations } = await this.list(prefix);
    await mapWithConcurrency(
      names.filter((name) => name !== recordName),
      this.concurrency,
      // The index only as listed: one written since (by a group write elsewhere) must not go.
      (name) => this.deleteObject(name, name === `${prefix}index.json` ? generations.get(name) : undefined),
    );
    await this.deleteObject(recordName);
    return generations.get(recordName);
  }

  /** Every name (and, with a delimiter, every folder prefix) under `prefix`, through all pages. */
  private async list(
    prefix: string,
    delimiter?: string,
    range?: { start: string; end: string },
  ): Promise<{ names: string[]; prefixes: string[]; generations: Map<string, string> }> {
    const names: string[] = [];
    const prefixes: string[] = [];
    const generations = new Map<string, string>();
    let pageToken: string | undefined;
    do {
      const page = await this.listPage<ListResponse>(prefix, LIST_FIELDS, pageToken, delimiter, range);
      for (const item of page.items ?? []) {
        names.push(item.name);
        if (item.generation !== undefined) generations.set(item.name, String(item.generation));
      }
      prefixes.push(...(page.prefixes ?? []));
      pageToken = page.nextPageToken || undefined;
    } while (pageToken !== undefined);
    return { names, prefixes, generations };
  }

  /** One page of the listing under `prefix` (after `pageToken`), its response holding only `fields`; retried. */
  private listPage<T>(
    prefix: string,
    fields: string,
    pageToken: string | undefined,
    delimiter?: string,
    range?: { start: string; end: string },
  ): Promise<T> {
    return this.retrying('list', prefix, async () => {
      const [, , response] = await this.bucket.getFiles({
        prefix,
        ...(delimiter !== undefined && { delimiter }),
        ...(range && { startOffset: range.start, endOffset: range.end }),
        ...(pageToken !== undefined && { pageToken }),
        maxResults: this.listPageSize,
        autoPaginate: false,
        fields,
      });
      return (response ?? {}) as T;
    });
  }

  // ---- retries

  /** Runs one request with retries on transient failures; wraps the error once they run out. */
  private async retrying<T>(operation: string, name: string, run: () => Promise<T>): Promise<T> {
    let attempts = 0;
    try {
      return await withRetry(
        (attempt) => {
          attempts = attempt;
          return run();
        },
        this.retryControl(operation, name, isTransient),
      );
    } catch (error) {
      throw this.wrap(operation, name, error, attempts);
    }
  }

  private retryControl(operation: string, name: string, retryable: (error: unknown) => boolean) {
    return {
      policy: this.policy,
      retryable: (error: unknown) => {
        const status = statusOf(error);
        if (status === 412) this.counters.preconditionFailures++;
        else if (status === 429) this.counters.rateLimited++;
        else if (isTransient(error)) this.counters.transientFailures++;
        return retryable(error);
      },
      onRetry: (error: unknown, retry: number, delayMs: number) => {
        this.counters.retries++;
        this.log.debug('retrying storage request', {
          operation,
          object: name,
          status: statusOf(error),
          retry,
          delayMs,
        });
      },
    };
  }

  /** Retries that ran out become a typed error keeping the status; anything else passes through. */
  private wrap(operation: string, name: string, error: unknown, attempts: number): unknown {
    const status = statusOf(error);
    if (status !== 412 && !isTransient(error)) return error;
    const what =
      status === 412 ? 'other writers kept changing it' : status === 429 ? 'rate limited' : 'service unavailable';
    const key = name.startsWith('gs://') ? name : `gs://${this.bucketName}/${name}`;
    const message = `could not ${operation} ${key} in ${attempts} attempt${attempts === 1 ? '' : 's'}: ${what} (last answer ${String(status)}: ${messageOf(error)})`;
    const details = { key, status, attempts, cause: error };
    return status === 412 ? new StorageConflictError(message, details) : new StorageUnavailableError(message, details);
  }
}

/** The key's id when the key is a plain (not shortened) encoding of one. */
function decodeKey(key: string): string | undefined {
  try {
    const id = keyToId(key);
    return id !== undefined && idToKey(id) === key ? id : undefined;
  } catch {
    return undefined; // not an encoding idToKey makes: someone else's object
  }
}

function statusOf(error: unknown): number | string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' || typeof code === 'string' ? code : undefined;
}

function isTransient(error: unknown): boolean {
  const status = statusOf(error);
  return typeof status === 'number'
    ? TRANSIENT_STATUS.has(status)
    : status !== undefined && TRANSIENT_SOCKET_CODES.has(status);
}

function messageOf(error: unknown): string {
  // Not `instanceof Error`: the client may live in another realm (e.g. loaded outside a test vm).
  const own = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : undefined;
  const message = typeof own === 'string' ? own : String(error);
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

function validateBucketName(bucket: unknown): string {
  if (!isBucketName(bucket)) {
    throw new InvalidArgumentError(
      `bucket must be a Cloud Storage bucket name (lowercase letters, digits, "-", "_", "."), not ${JSON.stringify(bucket)}`,
    );
  }
  return bucket;
}

function normalizePrefix(prefix: unknown): string {
  if (prefix === undefined || prefix === '') return '';
  if (typeof prefix !== 'string') throw new InvalidArgumentError(`prefix must be a string, not ${typeof prefix}`);
  if (/[\u0000-\u001f\u007f-\u009f]/.test(prefix))
    throw new InvalidArgumentError(`prefix ${JSON.stringify(prefix)} must not contain control characters`);
  if (prefix.startsWith('/'))
    throw new InvalidArgumentError(`prefix ${JSON.stringify(prefix)} must not start with "/"`);
  if (Buffer.byteLength(prefix, 'utf8') > MAX_PREFIX_BYTES) {
    throw new InvalidArgumentError(
      `prefix is ${Buffer.byteLength(prefix, 'utf8')} bytes, over the limit of ${MAX_PREFIX_BYTES} (object names are at most 1024)`,
    );
  }
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

function positiveInteger(value: unknown, setting: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${setting} must be a positive integer, not ${JSON.stringify(value)}`);
  }
  return value;
}
