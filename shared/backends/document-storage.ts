import { randomUUID } from 'node:crypto';
import type { BlendOutcome, ContactWrite } from '../blend';
import { InvalidArgumentError, StorageClosedError } from '../errors';
import type { WriteOrigin } from '../events/types';
import { HybridLogicalClock } from '../hlc';
import { changePath, parsePath, pathMatches, validateNetworkId, validateWriterId, type ParsedPath } from '../ids';
import { createLogger, type Logger } from '../log';
import type {
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
import { checkBlendMode, copyContent, DEFAULT_MAX_CONTENT_BYTES, validateQuery } from '../state-validation';
import { copyNetworks } from '../sync';
import { KeyedMutex, KeyedReadWriteLock } from '../util/locks';
import { newestContact } from './group-records';
import {
  checkIds,
  checkOrigin,
  StoreMaterializer,
  type ContactWriteEntry,
  type Materializer,
  type NetworkSaveOutcome,
  type WriteLocks,
} from './materializer';
import type { SaveSnapshotOptions, SnapshotIfChangedOptions } from './snapshot-stream';
import { StoreSnapshotter, type Snapshotter } from './snapshotter';
import { StoreStateReader, type StateReader } from './state-reader';
import type { SnapshotWrite, StateStore } from './state-store';
import type { MaterializedState } from './materialized-state';

export { assembleGroupState, emptyGroupState, publicContact } from './group-records';

export interface DocumentStorageOptions {
  /** Identifies this instance's writes in clock stamps; random by default. */
  writerId?: string;
  /** Largest encoded contact content accepted, in bytes (default 10 MiB). */
  maxContentBytes?: number;
  logger?: Logger;
}

/** What a backend may compose into its `DocumentStorage` beside the store; each part defaults to the one made of the store's primitives. */
export interface DocumentStorageParts {
  /** Reads of whole groups and networks, e.g. PostgreSQL's single statements. */
  reader?: StateReader;
  /** See `StoreMaterializerOptions.packLoneWrites`. */
  packLoneWrites?: boolean;
  /** See `StoreMaterializerOptions.admitFromCache`. */
  admitFromCache?: boolean;
  /**
   * Groups read or written at once by network-wide work (network saves write this many, snapshots
   * read ahead this many), and contacts a group write writes at once. Default: each part's own (1
   * and 4); stores whose requests overlap well (files on one disk, a remote store) want more.
   */
  groupConcurrency?: number;
}

interface Subscription {
  path: ParsedPath;
  callback: SubscriptionCallback;
  delivery: Promise<void>;
}

/**
 * `NetworkStorage` over a `StateStore`, as a facade: it validates, stamps this instance's own
 * writes, and hands them to its parts: a `Materializer` (blend semantics, tombstones, cascades),
 * a `Snapshotter` and a `StateReader`. It keeps the in-process subscriptions, told by the
 * Materializer of every group changed. The parts' methods are its own too, so the functions can
 * take it as a `Materializer` or `Snapshotter`.
 */
export class DocumentStorage implements MaterializedState {
  readonly writerId: string;
  readonly materializer: Materializer;
  readonly snapshotter: Snapshotter;
  /** The materializer itself, for writes validated here already. */
  protected readonly storeMaterializer: StoreMaterializer;
  protected readonly maxContentBytes: number;
  protected readonly log: Logger;
  private readonly reader: StateReader;
  private readonly clock: HybridLogicalClock;
  private sequence = 0;
  private readonly contactSequences = new ContactSequences();
  private readonly subscriptions = new Set<Subscription>();
  private ready: Promise<void> | undefined;
  private closed = false;

  constructor(
    protected readonly store: StateStore,
    options: DocumentStorageOptions = {},
    parts: DocumentStorageParts = {},
  ) {
    this.writerId = validateWriterId(options.writerId ?? `storage-${randomUUID().slice(0, 8)}`);
    this.maxContentBytes = options.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES;
    this.log = options.logger ?? createLogger('storage');
    this.clock = new HybridLogicalClock(this.writerId);
    const locks: WriteLocks = { networks: new KeyedReadWriteLock(), groups: new KeyedMutex() };
    const open = (operation: string) => this.open(operation);
    this.materializer = this.storeMaterializer = new StoreMaterializer(store, {
      clock: this.clock,
      locks,
      open,
      onChange: (networkId, groupId, kind) => this.notify(networkId, groupId, kind),
      maxContentBytes: this.maxContentBytes,
      packLoneWrites: parts.packLoneWrites,
      admitFromCache: parts.admitFromCache,
      ...(parts.groupConcurrency !== undefined && { writeConcurrency: parts.groupConcurrency }),
    });
    this.snapshotter = new StoreSnapshotter(store, {
      locks,
      open,
      ...(parts.groupConcurrency !== undefined && { readAhead: parts.groupConcurrency }),
    });
    this.reader = parts.reader ?? new StoreStateReader(store);
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

  async saveContactContent(
    networkId: string,
    groupId: string,
    contactId: string,
    content: unknown,
    options: ContactWriteOptions = {},
  ): Promise<void> {
    checkIds(networkId, groupId, contactId);
    checkBlendMode(options.blendMode);
    // Checked and copied in one pass: the copy is what the caller can no longer change.
    const write: ContactWrite = {
      content: copyContent(content, this.maxContentBytes, `content of contact ${JSON.stringify(contactId)}`),
      ...this.nextOrigin(),
      seq: this.contactSequences.next(networkId, groupId, contactId),
      blendMode: options.blendMode,
    };
    await this.commitContactWrite(networkId, groupId, contactId, write);
  }

  /** See `Materializer.applyContactWrite`: how the mesh materializes a write; `saveContactContent` stamps its own. */
  async applyContactWrite(
    networkId: string,
    groupId: string,
    contactId: string,
    write: ContactWrite,
  ): Promise<BlendOutcome> {
    checkIds(networkId, groupId, contactId);
    checkOrigin(write);
    return this.commitContactWrite(networkId, groupId, contactId, write);
  }

  /** Applies a contact write whose ids and origin are validated; where a backend changes how contact writes are committed. */
  protected commitContactWrite(
    networkId: string,
    groupId: string,
    contactId: string,
    write: ContactWrite,
  ): Promise<BlendOutcome> {
    return this.storeMaterializer.applyCheckedContactWrite(networkId, groupId, contactId, write);
  }

  /** See `Materializer.applyContactWriteBatch`. */
  applyContactWriteBatch(networkId: string, groupId: string, writes: ContactWriteEntry[]): Promise<BlendOutcome[]> {
    return this.materializer.applyContactWriteBatch(networkId, groupId, writes);
  }

  /** See `Materializer.applyContactWrites`. */
  applyContactWrites(networkId: string, groupId: string, writes: ContactWriteEntry[]): Promise<BlendOutcome[]> {
    return this.materializer.applyContactWrites(networkId, groupId, writes);
  }

  async loadContactContent(networkId: string, groupId: string, contactId: string): Promise<unknown | null> {
    checkIds(networkId, groupId, contactId);
    await this.open('loadContactContent');
    const [stored, record] = await Promise.all([
      this.store.getContact(networkId, groupId, contactId),
      this.store.getGroup(networkId, groupId),
    ]);
    return newestContact(stored, record?.contacts?.get(contactId) ?? null)?.content ?? null;
  }

  // ---- groups

  async saveGroupState(networkId: string, groupId: string, state: GroupState): Promise<void> {
    await this.applyGroupSave(networkId, groupId, state, this.nextOrigin());
  }

  /** See `Materializer.applyGroupSave`. */
  applyGroupSave(networkId: string, groupId: string, state: GroupState, origin: WriteOrigin): Promise<boolean> {
    return this.materializer.applyGroupSave(networkId, groupId, state, origin);
  }

  async loadGroupState(networkId: string, groupId: string): Promise<GroupState | null> {
    checkIds(networkId, groupId);
    await this.open('loadGroupState');
    return this.reader.readGroup(networkId, groupId);
  }

  async deleteGroup(networkId: string, groupId: string): Promise<void> {
    await this.applyGroupDelete(networkId, groupId, this.nextOrigin());
  }

  /** See `Materializer.applyGroupDelete`. */
  applyGroupDelete(networkId: string, groupId: string, origin: WriteOrigin): Promise<string[]> {
    return this.materializer.applyGroupDelete(networkId, groupId, origin);
  }

  // ---- networks

  async saveNetworkState(networkId: string, state: NetworkState): Promise<void> {
    await this.applyNetworkSave(networkId, state, this.nextOrigin());
  }

  /** See `Materializer.applyNetworkSave`. */
  applyNetworkSave(networkId: string, state: NetworkState, origin: WriteOrigin): Promise<NetworkSaveOutcome | null> {
    return this.materializer.applyNetworkSave(networkId, state, origin);
  }

  async loadNetworkState(networkId: string): Promise<NetworkState | null> {
    validateNetworkId(networkId);
    await this.open('loadNetworkState');
    return this.reader.readNetwork(networkId);
  }

  async listNetworks(): Promise<string[]> {
    await this.open('listNetworks');
    return this.reader.listLiveNetworks();
  }

  async deleteNetwork(networkId: string): Promise<void> {
    await this.applyNetworkDelete(networkId, this.nextOrigin());
  }

  /** See `Materializer.applyNetworkDelete`. */
  applyNetworkDelete(networkId: string, origin: WriteOrigin): Promise<string[] | null> {
    return this.materializer.applyNetworkDelete(networkId, origin);
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
    return this.reader.queryGroups(networkId, query);
  }

  // ---- snapshots

  /** With `options.snapshotId`, a second call with the same id returns that id without writing. */
  async saveSnapshot(networkId: string, label?: string, options: SaveSnapshotOptions = {}): Promise<string> {
    return (await this.writeSnapshot(networkId, label, options)).info.id;
  }

  /** See `Snapshotter.writeSnapshot`: `saveSnapshot` that also tells whether this call made the snapshot. */
  writeSnapshot(networkId: string, label?: string, options: SaveSnapshotOptions = {}): Promise<SnapshotWrite> {
    return this.snapshotter.writeSnapshot(networkId, label, options);
  }

  /** See `Snapshotter.snapshotIfChanged`. */
  snapshotIfChanged(
    networkId: string,
    label?: string,
    options: SnapshotIfChangedOptions = {},
  ): Promise<SnapshotWrite | null> {
    return this.snapshotter.snapshotIfChanged(networkId, label, options);
  }

  /** See `Snapshotter.lastChanged`. */
  lastChanged(networkId: string): Promise<Date | null> {
    return this.snapshotter.lastChanged(networkId);
  }

  /** See `Snapshotter.pruneSnapshots`. */
  pruneSnapshots(networkId: string, keep: number): Promise<string[]> {
    return this.snapshotter.pruneSnapshots(networkId, keep);
  }

  loadSnapshot(networkId: string, snapshotId: string): Promise<NetworkState> {
    return this.snapshotter.loadSnapshot(networkId, snapshotId);
  }

  /**
   * Puts a snapshot back as the live network: a network save stamped `origin.stamp` (now by
   * default), so writes older than the restore that arrive afterwards do not survive it and newer
   * ones apply on top. Returns what `applyNetworkSave` returns.
   */
  async restoreSnapshot(
    networkId: string,
    snapshotId: string,
    origin: WriteOrigin = this.nextOrigin(),
  ): Promise<NetworkSaveOutcome | null> {
    const state = await this.loadSnapshot(networkId, snapshotId);
    return this.applyNetworkSave(networkId, state, origin);
  }

  listSnapshots(networkId: string): Promise<SnapshotInfo[]> {
    return this.snapshotter.listSnapshots(networkId);
  }

  deleteSnapshot(networkId: string, snapshotId: string): Promise<void> {
    return this.snapshotter.deleteSnapshot(networkId, snapshotId);
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

  private async open(operation: string): Promise<void> {
    if (this.closed) throw new StorageClosedError(operation);
    await this.initialize();
  }

  private notify(networkId: string, groupId: string, kind: GroupChangeKind): void {
    if (this.subscriptions.size === 0) return;
    const matching = [...this.subscriptions].filter((s) => pathMatches(s.path, networkId, groupId));
    if (matching.length === 0) return;
    const change: GroupChange = { networkId, groupId, path: changePath(networkId, groupId), kind, time: new Date() };
    const state =
      kind === 'deleted' ? Promise.resolve(null) : this.reader.readGroup(networkId, groupId).catch(() => null);
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
