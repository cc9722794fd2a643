import type { Storage } from '@google-cloud/storage';
import { InvalidArgumentError } from '../errors';
import type { GroupQuery, GroupState, NetworkState } from '../model';
import { groupMatches } from '../query';
import { DocumentStorage, type DocumentStorageOptions } from './document-storage';
import { DEFAULT_GCS_CONCURRENCY, GcsStateStore, type GcsStoreCounters } from './gcs-store';
import { assembleGroupState } from './group-records';
import type { RetryOptions } from './retry';
import { StoreStateReader } from './state-reader';

export interface GcsStorageOptions extends DocumentStorageOptions {
  /** An existing bucket; `initialize()` fails naming it when missing, unless `createBucketIfMissing`. */
  bucket: string;
  /** Object name prefix everything lives under, e.g. "spine/" (default none). */
  prefix?: string;
  /**
   * The `@google-cloud/storage` client; default `new Storage({ retryOptions: { autoRetry: false } })`.
   * GcsStorage retries itself (see `retry`), so give a client of your own `autoRetry: false` too.
   */
  storage?: Storage;
  createBucketIfMissing?: boolean;
  /** Backoff for compare-and-set races (412) and rate limits or outages (408/429/5xx). */
  retry?: RetryOptions;
  /**
   * Requests in flight at once when reading, writing or deleting many objects: the records and
   * contacts of a network load, snapshot or query, the groups of a network save, the contacts of a
   * group (default 16). In the cloud each is a round trip of tens of milliseconds, so one at a time
   * costs seconds per network.
   */
  concurrency?: number;
  /**
   * Bytes of network and group records kept from what was read or written, with their generations
   * (default 64 MiB; 0 keeps none): batches of writes to a group admit themselves from them and
   * compare-and-set the group record on the cached generation, so a stale copy costs a re-read.
   */
  recordCacheBytes?: number;
}

/**
 * `NetworkStorage` on Cloud Storage: one object per contact, group record, network record and
 * snapshot (layout in gcs-store.ts). Contact writes are compare-and-set on object generations, so
 * several processes may share one bucket and prefix; writes from one process to one group are
 * also serialized in-process. A `DocumentStorage` over a `GcsStateStore`, packing lone writes.
 */
export class GcsStorage extends DocumentStorage {
  readonly bucket: string;
  readonly prefix: string;
  private readonly gcs: GcsStateStore;

  constructor(options: GcsStorageOptions) {
    if (!options || typeof options !== 'object')
      throw new InvalidArgumentError('GcsStorage needs options with { bucket }');
    const store = new GcsStateStore({
      bucket: options.bucket,
      prefix: options.prefix,
      storage: options.storage,
      createBucketIfMissing: options.createBucketIfMissing,
      retry: options.retry,
      concurrency: options.concurrency,
      recordCacheBytes: options.recordCacheBytes,
      logger: options.logger,
    });
    const concurrency = options.concurrency ?? DEFAULT_GCS_CONCURRENCY;
    // A lone write too is packed into the group record: with the record cached, that is one
    // compare-and-set request, where a contact of its own costs reads of both records and the contact.
    super(store, options, {
      packLoneWrites: true,
      reader: new GcsStateReader(store, { concurrency }),
      groupConcurrency: concurrency,
    });
    this.gcs = store;
    this.bucket = store.bucketName;
    this.prefix = store.prefix;
  }

  /** What retries ran into so far (412 races, 429s, transient failures); a copy. */
  retryCounters(): GcsStoreCounters {
    return { ...this.gcs.counters };
  }
}

/**
 * Reads of a `GcsStateStore`: a network's groups from one listing of their objects, downloaded
 * `concurrency` at a time, and queries answered from the network's group index, so only the
 * groups that match are read.
 */
export class GcsStateReader extends StoreStateReader {
  constructor(
    private readonly gcs: GcsStateStore,
    options: { concurrency?: number } = {},
  ) {
    super(gcs, options);
  }

  /** The network record and one listing of every group's objects side by side, then the objects found. */
  override async readNetwork(networkId: string): Promise<NetworkState | null> {
    const [record, stored] = await Promise.all([this.gcs.getNetwork(networkId), this.gcs.readGroups(networkId)]);
    if (!record || record.deleted) return null;
    const groups = new Map<string, GroupState>();
    for (const groupId of [...stored.keys()].sort()) {
      const group = stored.get(groupId)!;
      if (group.record) groups.set(groupId, assembleGroupState(group.record, group.contacts));
    }
    return { groups, rootGroupId: record.rootGroupId, currentGroupId: record.currentGroupId };
  }

  override async queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]> {
    const ids = await this.gcs.queryGroupIds(networkId, query);
    const stored = await this.gcs.readGroups(networkId, ids);
    // The index names candidates; the records read decide.
    return ids.flatMap((groupId) => {
      const group = stored.get(groupId);
      if (!group?.record) return [];
      const state = assembleGroupState(group.record, group.contacts);
      return groupMatches(state.group, query) ? [state] : [];
    });
  }
}

export { GcsStateStore, type GcsStateStoreOptions, type GcsStoreCounters } from './gcs-store';
export type { RetryOptions } from './retry';
