import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { CreateSubscriptionOptions, Message, PubSub, Subscription, Topic } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { clone, encode } from '../codec';
import {
  ContentTooLargeError,
  InvalidArgumentError,
  NetworkNotFoundError,
  PublishError,
  RestoreStillApplyingError,
  StorageClosedError,
  TimeoutError,
} from '../errors';
import { newSnapshotId } from '../snapshot-id';
import { attributeValue, createEvent, encodePubSubMessage, fromPubSubMessage } from '../events';
import {
  EventType,
  type AnySpineEvent,
  type BundledContactWrite,
  type ContentReference,
  type EventDataByType,
  type EventTypeName,
  type WriteOrigin,
} from '../events/types';
import { ContactSequences } from '../contact-sequences';
import { HybridLogicalClock } from '../hlc';
import {
  changePath,
  parsePath,
  pathMatches,
  validateContactId,
  validateGroupId,
  validateNetworkId,
  validateWriterId,
  type ParsedPath,
} from '../ids';
import { createLogger, type Logger } from '../log';
import type {
  ContactWriteOptions,
  GroupQuery,
  GroupState,
  NetworkState,
  NetworkStorage,
  SnapshotInfo,
  SubscribeOptions,
  SubscriptionCallback,
  SyncResult,
  Unsubscribe,
} from '../model';
import { subscriptionMetadata } from '../provision';
import { stateStoreFromSettings } from '../backends/from-settings';
import { loadSettings, persistModeFor, type PersistOn } from '../settings';
import { createPubSubClient, createStorageClient } from './clients';
import {
  checkBlendMode,
  checkContent,
  DEFAULT_MAX_CONTENT_BYTES,
  validateGroupState,
  validateNetworkState,
} from '../state-validation';
import { defineTopology, type Topology } from '../topology';
import { AGENTS_GROUP, REGISTRY_NETWORK, type Heartbeat } from '../system';
import { ContentStore, MAX_INLINE_CONTENT_BYTES } from './content-store';
import { CHANGE_ATTRIBUTES } from './change-publisher';
import { resolveBundling, WriteBundler, type BundlingOptions } from './write-bundler';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { copyNetworks } from '../sync';
import { ArchiveReader } from '../history/archive-reader';
import { readHistory, type HistoryOptions, type HistoryPage } from '../history/history';
import { PointInTimeRestoreStillApplyingError, RestoreTargetExistsError } from '../history/errors';
import { rebuildNetworkAt, type RestoreNetworkOptions, type RestoreSummary } from '../history/restore';
import { checkSince, parseSince, readCatchUp, seamKey } from '../history/catch-up';
import { defaultArchiveLagMs, SEAM_MEMORY_MS, waitForArchive } from './catch-up';

export interface SpineStorageOptions {
  projectId: string;
  /** Prefix of the mesh's topic and subscription names (`spine-` by default). */
  topicPrefix?: string;
  /** Where materialized state is read from: the store the mesh's functions write. */
  state: NetworkStorage;
  /** Names this client in clock stamps and logs; random by default. */
  writerId?: string;
  /**
   * The deployment's persistence mode and its per-network exceptions (as the functions have them):
   * `flush()` asks for an immediate flush of `batch`, `interval` and `manual` networks.
   */
  persistOn?: PersistOn;
  persistOverrides?: Record<string, PersistOn>;
  /** Pub/Sub client; one for `projectId` by default (PUBSUB_EMULATOR_HOST is honoured). */
  pubsub?: PubSub;
  /** Cloud Storage client and bucket for content too large to travel inside an event. */
  storage?: Storage;
  bucket?: string;
  /** How long `flush()` and `{ wait: 'materialized' }` wait (default 30 s). */
  flushTimeoutMs?: number;
  maxContentBytes?: number;
  /**
   * Contact writes to a group made while an earlier publish for that group is in flight are
   * gathered into one `contacts.written` event, within these bounds (defaults in DEFAULT_BUNDLING);
   * `false` publishes every write as its own event.
   */
  bundling?: BundlingOptions | false;
  /**
   * How long after a write is accepted it is surely in the event archive: a catch-up subscription
   * (`subscribe(path, callback, { since })`) waits this long after its live side began before it
   * reads the archive. 3 s on the emulator (the local archiver's batches last about a second), the
   * archive's `max_duration` plus 15 s in the cloud.
   */
  archiveLagMs?: number;
  logger?: Logger;
  /** Closed with this client (for clients built by `fromEnv`). */
  owned?: Array<{ close(): Promise<unknown> }>;
}

export interface SpineWriteOptions extends ContactWriteOptions {
  /** `accepted` (default): resolve once Pub/Sub has the event; `materialized`: once it is applied. */
  wait?: 'accepted' | 'materialized';
  timeoutMs?: number;
}

/** What a client has published so far; for metrics and benchmarks. */
export interface SpineStorageStats {
  /** Contact writes handed to Pub/Sub. */
  contactWrites: number;
  /** Events that carried them: a bundle of many writes is one. */
  contactWriteEvents: number;
  /** Of those events, the `contacts.written` bundles. */
  bundles: number;
}

interface PendingWrite {
  eventId: string;
  type: EventTypeName;
  path: string;
  promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

interface Watch {
  subscription: Subscription;
  chain: Promise<void>;
  /** Of a catch-up subscription: the writes its archive part covered (or skipped), by `seamKey`. */
  seam?: Set<string>;
}

/** Writes and acknowledgements are matched by these attributes on the group-changes topic. */
const {
  writer: WRITER_ATTRIBUTE,
  cause: CAUSE_ATTRIBUTE,
  batch: BATCH_ATTRIBUTE,
  bundle: BUNDLE_ATTRIBUTE,
} = CHANGE_ATTRIBUTES;
/**
 * How long `flush()` waits before asking a batched network for a flush again: steady for the first
 * `STEADY_FLUSH_REQUESTS_MS`, then doubling up to the maximum. A request travels under its network's
 * ordering key, so it can reach persist before the later writes of each group's key are pending; a
 * doubling interval from the start would leave the last of them waiting up to as long again as
 * everything took (a write pending at 0.8 s waited for the ask at 1.5 s).
 */
const FLUSH_REQUEST_REPEAT_MS = 100;
const STEADY_FLUSH_REQUESTS_MS = 2_000;
const MAX_FLUSH_REQUEST_REPEAT_MS = 8_000;
/** Bytes a write adds to a bundle beside its content and contact id: its id, stamp, seq and keys. */
const BUNDLED_WRITE_OVERHEAD_BYTES = 160;

function quoteFilterValue(value: string): string | undefined {
  // Values the filter grammar would need escapes for, and values longer than an attribute
  // holds, are filtered on arrival only.
  if (/["\\\n]/.test(value) || attributeValue(value) !== value) return undefined;
  return `"${value}"`;
}

/**
 * `NetworkStorage` through the mesh: every write is a validated event published to the
 * contact-writes topic (ordering key `network/group`) and resolves once Pub/Sub accepted it;
 * reads come from the materialized state; `subscribe` is a Pub/Sub subscription on the
 * group-changes topic. `flush()` waits until this client's writes are materialized.
 */
export class SpineStorage implements NetworkStorage {
  readonly writerId: string;
  /** The writer id in this client's events: `writerId` plus an incarnation, so sequence numbers never repeat. */
  readonly sessionWriterId: string;
  readonly topology: Topology;
  readonly persistOn: PersistOn;
  readonly persistOverrides: Record<string, PersistOn>;
  /** The materialized state this client reads. */
  readonly state: NetworkStorage;
  private readonly pubsub: PubSub;
  private readonly writes: Topic;
  private readonly contentStore?: ContentStore;
  private readonly archive?: ArchiveReader;
  private readonly clock: HybridLogicalClock;
  private readonly maxContentBytes: number;
  private readonly flushTimeoutMs: number;
  private readonly archiveLagMs: number;
  private readonly log: Logger;
  private readonly owned: Array<{ close(): Promise<unknown> }>;
  private readonly bundler?: WriteBundler;
  private readonly counts: SpineStorageStats = { contactWrites: 0, contactWriteEvents: 0, bundles: 0 };
  private sequence = 0;
  private readonly contactSequences = new ContactSequences();
  private readonly pending = new Map<string, PendingWrite>();
  private readonly watches = new Set<Watch>();
  private ackListener?: Promise<Subscription>;
  private closed = false;

  constructor(options: SpineStorageOptions) {
    if (!options || typeof options.projectId !== 'string' || !options.projectId)
      throw new InvalidArgumentError('SpineStorage needs { projectId }');
    if (!options.state)
      throw new InvalidArgumentError('SpineStorage needs { state }: the NetworkStorage that holds materialized state');
    this.writerId = validateWriterId(options.writerId ?? `writer-${randomUUID().slice(0, 8)}`);
    this.sessionWriterId = `${this.writerId}.${randomBytes(4).toString('hex')}`;
    this.topology = defineTopology({
      projectId: options.projectId,
      prefix: options.topicPrefix,
      bucket: options.bucket ?? 'unused',
    });
    this.persistOn = options.persistOn ?? 'immediate';
    this.persistOverrides = { ...options.persistOverrides };
    this.state = options.state;
    this.log = options.logger ?? createLogger('spine-storage', { writerId: this.sessionWriterId });
    if (options.pubsub) this.pubsub = options.pubsub;
    else {
      // Loaded here so a caller that injects its own client never pays for a second one.
      const { PubSub } = require('@google-cloud/pubsub') as typeof import('@google-cloud/pubsub');
      this.pubsub = new PubSub({ projectId: options.projectId });
    }
    this.writes = this.pubsub.topic(this.topology.topics.contactWrites.name, {
      messageOrdering: true,
      batching: { maxMessages: 100, maxMilliseconds: 1 },
    });
    if (options.storage && options.bucket) {
      this.contentStore = new ContentStore(options.storage, options.bucket);
      this.archive = new ArchiveReader(options.storage, options.bucket, this.topology.archive, {
        maxBatchMs: this.topology.archive.maxDurationSeconds * 1000,
      });
    }
    this.clock = new HybridLogicalClock(this.sessionWriterId);
    this.maxContentBytes = options.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES;
    this.flushTimeoutMs = options.flushTimeoutMs ?? 30_000;
    this.archiveLagMs =
      options.archiveLagMs ?? defaultArchiveLagMs(this.pubsub.isEmulator, this.topology.archive.maxDurationSeconds);
    this.owned = options.owned ?? [];
    const bundling = resolveBundling(options.bundling);
    if (bundling)
      this.bundler = new WriteBundler(bundling, (networkId, groupId, writes) =>
        this.sendContactWrites(networkId, groupId, writes),
      );
  }

  /**
   * A client built from exactly the variables `npm start` writes to `.spine/mesh.env` (or a
   * deployment's): GOOGLE_CLOUD_PROJECT, SPINE_TOPIC_PREFIX, SPINE_BUCKET, SPINE_STATE_PREFIX,
   * SPINE_PERSIST_ON, SPINE_PERSIST_OVERRIDES, the emulator hosts and the state store's
   * (SPINE_STATE_STORE, SPINE_STATE_PATH, SPINE_POSTGRES_*). It owns its clients and
   * state store, and closes them with itself.
   */
  static fromEnv(
    env: Record<string, string | undefined> = process.env,
    options: Partial<Pick<SpineStorageOptions, 'writerId' | 'flushTimeoutMs' | 'logger'>> = {},
  ): SpineStorage {
    const settings = loadSettings(env);
    const pubsub = createPubSubClient(settings);
    const storage = createStorageClient(settings);
    const state = stateStoreFromSettings(settings, { storage });
    return new SpineStorage({
      projectId: settings.projectId,
      topicPrefix: settings.topicPrefix,
      state,
      pubsub,
      storage,
      bucket: settings.bucket,
      persistOn: settings.persistOn,
      persistOverrides: settings.persistOverrides,
      bundling: settings.bundling,
      ...options,
      owned: [state, pubsub],
    });
  }

  async initialize(): Promise<void> {
    this.ensureOpen('initialize');
    await this.state.initialize();
    await this.ensureAckListener();
  }

  // ---- writes: events

  async saveContactContent(
    networkId: string,
    groupId: string,
    contactId: string,
    content: unknown,
    options: SpineWriteOptions = {},
  ): Promise<void> {
    validateNetworkId(networkId);
    validateGroupId(groupId);
    validateContactId(contactId);
    checkBlendMode(options.blendMode);
    const what = `content of contact ${JSON.stringify(contactId)}`;
    const size = checkContent(content, this.maxContentBytes, what);
    this.ensureOpen(EventType.ContactWritten);
    const { stamp } = this.nextOrigin();
    const seq = this.contactSequences.next(networkId, groupId, contactId);
    const write: BundledContactWrite = {
      id: randomUUID(),
      contactId,
      seq,
      stamp,
      ...(options.blendMode ? { blendMode: options.blendMode } : {}),
    };
    if (size > MAX_INLINE_CONTENT_BYTES) write.contentRef = await this.storeByReference(encode(content), what);
    else write.content = clone(content);
    await this.ensureAckListener();
    // Tracked before publishing, so an acknowledgement that arrives first is not missed.
    const pending = this.track(write.id, EventType.ContactWritten, changePath(networkId, groupId));
    try {
      if (this.bundler)
        await this.bundler.add(
          networkId,
          groupId,
          write,
          size + Buffer.byteLength(contactId) + BUNDLED_WRITE_OVERHEAD_BYTES,
        );
      else await this.sendContactWrites(networkId, groupId, [write]);
    } catch (error) {
      this.pending.delete(write.id);
      throw error;
    }
    if (options.wait === 'materialized') await this.waitFor([pending], options.timeoutMs ?? this.flushTimeoutMs);
  }

  /** One contact write as a `contact.written` event (its id the event's), several as one `contacts.written`. */
  private async sendContactWrites(networkId: string, groupId: string, writes: BundledContactWrite[]): Promise<void> {
    this.ensureOpen(EventType.ContactWritten);
    const source = this.eventSource();
    this.counts.contactWrites += writes.length;
    this.counts.contactWriteEvents += 1;
    if (writes.length > 1) this.counts.bundles += 1;
    if (writes.length === 1) {
      const { id, ...write } = writes[0]!;
      const event = createEvent(
        EventType.ContactWritten,
        { networkId, groupId, writerId: this.sessionWriterId, ...write },
        { source, id },
      );
      await this.publishEvent(event);
    } else {
      await this.publishEvent(
        createEvent(
          EventType.ContactsWritten,
          { networkId, groupId, writerId: this.sessionWriterId, writes },
          { source },
        ),
      );
    }
  }

  async saveGroupState(networkId: string, groupId: string, state: GroupState): Promise<void> {
    validateNetworkId(networkId);
    validateGroupId(groupId);
    validateGroupState(groupId, state, this.maxContentBytes);
    // Writes gathered for the group go first, so the save follows them on the ordering key.
    this.bundler?.cut(networkId, groupId);
    const data: EventDataByType[typeof EventType.GroupSaved] = { networkId, groupId, ...this.nextOrigin() };
    const encoded = encode(state);
    if (Buffer.byteLength(encoded) > MAX_INLINE_CONTENT_BYTES)
      data.stateRef = await this.storeByReference(encoded, `state of group ${JSON.stringify(groupId)}`);
    else data.state = clone(state);
    await this.publish(EventType.GroupSaved, data);
  }

  async deleteGroup(networkId: string, groupId: string): Promise<void> {
    validateNetworkId(networkId);
    validateGroupId(groupId);
    this.bundler?.cut(networkId, groupId);
    await this.publish(EventType.GroupDeleted, { networkId, groupId, ...this.nextOrigin() });
  }

  async saveNetworkState(networkId: string, state: NetworkState): Promise<void> {
    await this.publishNetworkSave(networkId, state);
  }

  /** A `network.saved` event stamped now; its pending acknowledgement. */
  private async publishNetworkSave(networkId: string, state: NetworkState): Promise<PendingWrite> {
    validateNetworkId(networkId);
    validateNetworkState(state, this.maxContentBytes);
    const data: EventDataByType[typeof EventType.NetworkSaved] = { networkId, ...this.nextOrigin() };
    const encoded = encode(state);
    if (Buffer.byteLength(encoded) > MAX_INLINE_CONTENT_BYTES)
      data.stateRef = await this.storeByReference(encoded, `state of network ${JSON.stringify(networkId)}`);
    else data.state = clone(state);
    return this.publish(EventType.NetworkSaved, data);
  }

  async deleteNetwork(networkId: string): Promise<void> {
    validateNetworkId(networkId);
    await this.publish(EventType.NetworkDeleted, { networkId, ...this.nextOrigin() });
  }

  /**
   * Records that an agent is alive, with a free-form status, in the agent registry; the health
   * job lists every agent and marks it offline when its last heartbeat is too old.
   */
  async heartbeat(agentId: string, status = 'ok', options: SpineWriteOptions = {}): Promise<void> {
    validateContactId(agentId);
    if (typeof status !== 'string' || status.length > 1024)
      throw new InvalidArgumentError('heartbeat status must be a string of at most 1024 characters');
    const beat: Heartbeat = { agentId, status, at: new Date().toISOString() };
    await this.saveContactContent(REGISTRY_NETWORK, AGENTS_GROUP, agentId, beat, {
      ...options,
      blendMode: 'accept-last',
    });
  }

  /** Resolves when every write this client made so far is materialized; rejects naming what is not. */
  async flush(timeoutMs = this.flushTimeoutMs): Promise<void> {
    const waiting = [...this.pending.values()];
    // Gathered writes go out now; a flush request must not overtake them.
    await this.bundler?.drain();
    // Writes of `batch`, `interval` and `manual` networks wait for their window, a schedule or an
    // explicit flush: ask for one now, so a flush takes about as long as in `immediate` mode.
    const batched = new Set(
      waiting
        .map((w) => w.path.split('/')[0]!)
        .filter(
          (networkId) =>
            persistModeFor({ persistOn: this.persistOn, persistOverrides: this.persistOverrides }, networkId) !==
            'immediate',
        ),
    );
    const ask = async (networkIds: Iterable<string>) => {
      for (const networkId of networkIds)
        await this.publish(
          EventType.FlushRequested,
          { networkId, requestedBy: this.sessionWriterId },
          { track: false },
        );
    };
    await ask(batched);
    // A request can overtake writes still on their way into the pending buffer: while some of a
    // network's writes are not in, ask again, less and less often.
    let repeatMs = FLUSH_REQUEST_REPEAT_MS;
    const steadyUntil = Date.now() + STEADY_FLUSH_REQUESTS_MS;
    let timer: NodeJS.Timeout | undefined;
    const askAgain = () => {
      timer = setTimeout(() => {
        const still = new Set(
          waiting
            .filter((w) => this.pending.has(w.eventId))
            .map((w) => w.path.split('/')[0]!)
            .filter((networkId) => batched.has(networkId)),
        );
        if (still.size === 0 || this.closed) return;
        ask(still).catch((error: unknown) => this.log.warn('asking for a flush again failed', { error }));
        if (Date.now() >= steadyUntil) repeatMs = Math.min(repeatMs * 2, MAX_FLUSH_REQUEST_REPEAT_MS);
        askAgain();
      }, repeatMs);
    };
    if (batched.size) askAgain();
    try {
      await this.waitFor(waiting, timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }

  stats(): SpineStorageStats {
    return { ...this.counts };
  }

  // ---- reads: materialized state

  async loadContactContent(networkId: string, groupId: string, contactId: string): Promise<unknown | null> {
    this.ensureOpen('loadContactContent');
    return this.state.loadContactContent(networkId, groupId, contactId);
  }

  async loadGroupState(networkId: string, groupId: string): Promise<GroupState | null> {
    this.ensureOpen('loadGroupState');
    return this.state.loadGroupState(networkId, groupId);
  }

  async loadNetworkState(networkId: string): Promise<NetworkState | null> {
    this.ensureOpen('loadNetworkState');
    return this.state.loadNetworkState(networkId);
  }

  async listNetworks(): Promise<string[]> {
    this.ensureOpen('listNetworks');
    return this.state.listNetworks();
  }

  async exists(networkId: string): Promise<boolean> {
    this.ensureOpen('exists');
    return this.state.exists(networkId);
  }

  async queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]> {
    this.ensureOpen('queryGroups');
    return this.state.queryGroups(networkId, query);
  }

  // ---- snapshots (of materialized state, after this client's writes are in)

  /**
   * Asks the mesh's snapshot function for a snapshot of the network as it is once this client's
   * writes are materialized, and resolves with its id once the snapshot exists.
   */
  async saveSnapshot(networkId: string, label?: string): Promise<string> {
    validateNetworkId(networkId);
    if (label !== undefined && (typeof label !== 'string' || label.length > 1024))
      throw new InvalidArgumentError('snapshot label must be a string of at most 1024 characters');
    await this.flush();
    if (!(await this.state.exists(networkId))) throw new NetworkNotFoundError(networkId);
    const snapshotId = newSnapshotId();
    const pending = await this.publish(EventType.SnapshotRequested, {
      networkId,
      snapshotId,
      requestedBy: this.sessionWriterId,
      ...(label !== undefined ? { label } : {}),
    });
    await this.waitFor([pending], this.flushTimeoutMs);
    return snapshotId;
  }

  /**
   * Puts a snapshot back as the live network, through the mesh like any write: a network save
   * stamped now (groups not in the snapshot are removed; writes stamped before it that arrive
   * later do not survive it, later ones apply on top). Resolves once it and this client's earlier
   * writes are materialized. When `timeoutMs` (default `flushTimeoutMs`) passes while the restore
   * itself is still being applied, rejects with `RestoreStillApplyingError` (code
   * `STILL_APPLYING`, naming the network and snapshot, with a promise of its completion).
   */
  async restoreSnapshot(networkId: string, snapshotId: string, options: { timeoutMs?: number } = {}): Promise<void> {
    validateNetworkId(networkId);
    const timeoutMs = options.timeoutMs ?? this.flushTimeoutMs;
    const state = await this.state.loadSnapshot(networkId, snapshotId);
    const restore = await this.publishNetworkSave(networkId, state);
    try {
      await this.flush(timeoutMs);
    } catch (error) {
      if (error instanceof TimeoutError && this.pending.has(restore.eventId))
        throw new RestoreStillApplyingError(networkId, snapshotId, timeoutMs, restore.promise);
      throw error;
    }
  }

  async loadSnapshot(networkId: string, snapshotId: string): Promise<NetworkState> {
    this.ensureOpen('loadSnapshot');
    return this.state.loadSnapshot(networkId, snapshotId);
  }

  async listSnapshots(networkId: string): Promise<SnapshotInfo[]> {
    this.ensureOpen('listSnapshots');
    return this.state.listSnapshots(networkId);
  }

  async deleteSnapshot(networkId: string, snapshotId: string): Promise<void> {
    this.ensureOpen('deleteSnapshot');
    return this.state.deleteSnapshot(networkId, snapshotId);
  }

  // ---- history

  /**
   * The writes of a network, one of its groups or one contact, from the event archive, newest
   * first and paged (`limit`, then the page's `cursor` for older ones), within `from`/`to`: each
   * with its time, writer, blend mode, content and outcome (`changed`, `unchanged`,
   * `contradiction`), group and network saves and deletes included. Needs `{ storage, bucket }`.
   */
  async history(
    networkId: string,
    groupId?: string,
    contactId?: string,
    options: HistoryOptions = {},
  ): Promise<HistoryPage> {
    this.ensureOpen('history');
    const archive = this.archive;
    const contentStore = this.contentStore;
    if (!archive || !contentStore)
      throw new InvalidArgumentError('history reads the event archive: it needs SpineStorage { storage, bucket }');
    return readHistory(archive, (reference) => contentStore.get(reference), networkId, groupId, contactId, options);
  }

  /**
   * Point-in-time restore: the network as it was at `at` (the newest snapshot at or before it,
   * plus the archived events after the snapshot up to `at`, applied by the materializer the
   * functions use; see `rebuildNetworkAt`), built in memory first, then written through the mesh
   * as one network save stamped now. With `as`, into that new network (refused with
   * `RestoreTargetExistsError` when it exists), the live one left alone; without it, it replaces
   * the live network as `restoreSnapshot` does (writes stamped before the restore that arrive later
   * do not survive it). Errors, before anything is written: `RestorePointInFutureError`,
   * `RestorePointBeforeArchiveError`, `NothingToRestoreError`, `ArchiveCorruptError` and
   * `ArchiveUnreadableError` (naming the object). A wait that ends while the restore is still
   * being applied is a `PointInTimeRestoreStillApplyingError` (a `RestoreStillApplyingError`).
   * Needs `{ storage, bucket }`.
   */
  async restoreNetwork(networkId: string, options: RestoreNetworkOptions): Promise<RestoreSummary> {
    this.ensureOpen('restoreNetwork');
    validateNetworkId(networkId);
    if (options === null || typeof options !== 'object')
      throw new InvalidArgumentError('restoreNetwork needs options { at, as? }');
    const target = options.as === undefined ? networkId : validateNetworkId(options.as);
    if (options.as !== undefined && target === networkId)
      throw new InvalidArgumentError(
        `restoreNetwork: as names the network being restored (${JSON.stringify(networkId)}); leave it out to replace the live network`,
      );
    const timeoutMs = options.timeoutMs ?? this.flushTimeoutMs;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new InvalidArgumentError(
        `restoreNetwork: timeoutMs must be a positive number of milliseconds, not ${JSON.stringify(timeoutMs)}`,
      );
    const archive = this.archive;
    const contentStore = this.contentStore;
    if (!archive || !contentStore)
      throw new InvalidArgumentError(
        'restoreNetwork reads the event archive: it needs SpineStorage { storage, bucket }',
      );
    if (options.as !== undefined && (await this.state.exists(target))) throw new RestoreTargetExistsError(target);
    const rebuilt = await rebuildNetworkAt(
      archive,
      this.state,
      (reference) => contentStore.get(reference),
      networkId,
      options.at,
    );
    const restore = await this.publishNetworkSave(target, rebuilt.state);
    try {
      await this.flush(timeoutMs);
    } catch (error) {
      if (error instanceof TimeoutError && this.pending.has(restore.eventId))
        throw new PointInTimeRestoreStillApplyingError(target, rebuilt.at, timeoutMs, restore.promise);
      throw error;
    }
    return {
      sourceNetworkId: networkId,
      networkId: target,
      at: rebuilt.at,
      ...(rebuilt.snapshot ? { snapshot: { id: rebuilt.snapshot.id, createdAt: rebuilt.snapshot.createdAt } } : {}),
      eventsApplied: rebuilt.eventsApplied,
      groups: rebuilt.state.groups.size,
    };
  }

  // ---- federation

  /**
   * Calls back on every change under `path` (see `NetworkStorage.subscribe`). With `{ since }` (a
   * Date or an ISO 8601 time; no opaque token: a time is what a caller can resume from), it first
   * delivers every change after `since` from the event archive, each with the group's state as the
   * materializer made it from the archived events, then continues live, each write's change
   * delivered once across the seam (by `change.eventIds`). Resolves once the archive part has been
   * delivered. A `since` in the future or before the archive begins is refused with
   * `SinceOutOfRangeError` (code `INVALID_ARGUMENT`) before anything is created; an unreadable
   * archive rejects with the archive's error and leaves no subscription. Needs `{ storage, bucket }`.
   */
  async subscribe(path: string, callback: SubscriptionCallback, options: SubscribeOptions = {}): Promise<Unsubscribe> {
    const parsed = parsePath(path);
    if (typeof callback !== 'function') throw new InvalidArgumentError('subscribe needs a callback function');
    if (options === null || typeof options !== 'object')
      throw new InvalidArgumentError('subscribe: options must be an object');
    this.ensureOpen('subscribe');
    const since = options.since === undefined ? undefined : parseSince(options.since);
    const archive = this.archive;
    const contentStore = this.contentStore;
    if (since) {
      if (!archive || !contentStore)
        throw new InvalidArgumentError(
          'subscribe with since reads the event archive: it needs SpineStorage { storage, bucket }',
        );
      await checkSince(archive, since);
    }
    const topic = this.topology.topics.groupChanges.name;
    const name = `${this.topology.prefix}watch-${randomUUID()}`;
    const quotedPath = quoteFilterValue(path);
    const quotedBelow = quoteFilterValue(`${path}/`);
    const quotedNetwork = quoteFilterValue(parsed.networkId);
    const filter =
      parsed.groupPrefix === undefined
        ? quotedNetwork && `attributes.networkId = ${quotedNetwork}`
        : quotedPath && quotedBelow && `attributes.path = ${quotedPath} OR hasPrefix(attributes.path, ${quotedBelow})`;
    const metadata = subscriptionMetadata(this.topology, {
      ...this.clientSubscriptionSpec(),
      name,
      topic,
      ...(filter ? { filter } : {}),
    });
    const [subscription] = await this.pubsub
      .topic(topic)
      .createSubscription(name, metadata as CreateSubscriptionOptions);
    const liveFrom = Date.now();
    const watch: Watch = { subscription, chain: Promise.resolve(), ...(since ? { seam: new Set<string>() } : {}) };
    this.watches.add(watch);
    let liveSeen = false;
    // The archive part goes first in the chain: live changes wait behind it, unacknowledged.
    const caughtUp =
      since && archive && contentStore
        ? this.catchUp(
            parsed,
            since,
            liveFrom,
            callback,
            watch,
            archive,
            (ref) => contentStore.get(ref),
            () => liveSeen,
          )
        : Promise.resolve();
    watch.chain = caughtUp.catch(() => undefined);
    subscription.on('message', (message: Message) => {
      liveSeen = true;
      // One callback at a time per subscription, in arrival order.
      // A catch-up that failed has removed the subscription: what waited behind it is not delivered.
      watch.chain = watch.chain.then(() =>
        this.watches.has(watch) ? this.deliver(parsed, message, callback, watch.seam) : message.ack(),
      );
    });
    subscription.on('error', (error) => this.log.error('watch subscription failed', { subscription: name, error }));
    const unsubscribe = async () => {
      if (!this.watches.delete(watch)) return;
      await this.removeSubscription(subscription);
    };
    try {
      await caughtUp;
    } catch (error) {
      await unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  /**
   * The archive part of a catch-up subscription. The live subscription exists from `liveFrom`:
   * every change announced after that reaches it. A write whose change was announced before was
   * accepted before, so once the archive has everything accepted before `liveFrom`
   * (`waitForArchive`), the archive and the live side together hold every write after `since`;
   * the writes the archive delivered are remembered in `watch.seam`, and the live side drops
   * changes that cover only those.
   */
  private async catchUp(
    path: ParsedPath,
    since: Date,
    liveFrom: number,
    callback: SubscriptionCallback,
    watch: Watch,
    archive: ArchiveReader,
    loadContent: (reference: ContentReference) => Promise<Buffer>,
    liveSeen: () => boolean,
  ): Promise<void> {
    const started = performance.now();
    const { archiveCaughtUp } = await waitForArchive(archive, liveFrom, this.archiveLagMs, liveSeen);
    if (!archiveCaughtUp)
      this.log.warn('the archive has no batch begun after the live subscription yet; reading it as it is', {
        networkId: path.networkId,
        lagMs: this.archiveLagMs,
      });
    let delivered = 0;
    for await (const { state, change } of readCatchUp(
      archive,
      loadContent,
      path,
      since,
      watch.seam!,
      liveFrom - SEAM_MEMORY_MS,
    )) {
      if (!this.watches.has(watch)) return;
      delivered++;
      try {
        await callback(state, change);
      } catch (error) {
        this.log.error('subscriber callback failed', { path: change.path, error });
      }
    }
    this.log.info('catch-up delivered from the archive', {
      networkId: path.networkId,
      since: since.toISOString(),
      changes: delivered,
      ms: Math.round(performance.now() - started),
    });
  }

  async sync(remote: NetworkStorage): Promise<SyncResult> {
    this.ensureOpen('sync');
    const copied = await copyNetworks(remote, this);
    await this.flush();
    return copied;
  }

  /** Publishes what is buffered, removes this client's subscriptions and closes what it owns. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.bundler?.drain();
    await this.writes.flush().catch((error: unknown) => this.log.warn('draining the publisher failed', { error }));
    for (const pending of this.pending.values())
      pending.reject(new StorageClosedError(`waiting for ${pending.type} on ${pending.path}`));
    this.pending.clear();
    const subscriptions = [...this.watches].map((w) => w.subscription);
    this.watches.clear();
    if (this.ackListener) subscriptions.push(await this.ackListener.catch(() => undefined as never));
    await Promise.all(subscriptions.filter(Boolean).map((s) => this.removeSubscription(s)));
    for (const resource of this.owned) await resource.close().catch(() => undefined);
  }

  // ---- internals

  private nextOrigin(): WriteOrigin {
    return { stamp: this.clock.tick(), writerId: this.sessionWriterId, seq: ++this.sequence };
  }

  private ensureOpen(operation: string): void {
    if (this.closed) throw new StorageClosedError(operation);
  }

  private async storeByReference(encoded: string, what: string): Promise<ContentReference> {
    if (!this.contentStore) {
      throw new ContentTooLargeError(
        Buffer.byteLength(encoded),
        MAX_INLINE_CONTENT_BYTES,
        `${what} (larger content needs SpineStorage { storage, bucket })`,
      );
    }
    return this.contentStore.put(Buffer.from(encoded, 'utf8'));
  }

  private async publish<T extends EventTypeName>(type: T, data: EventDataByType[T]): Promise<PendingWrite>;
  private async publish<T extends EventTypeName>(
    type: T,
    data: EventDataByType[T],
    options: { track: false },
  ): Promise<undefined>;
  private async publish<T extends EventTypeName>(
    type: T,
    data: EventDataByType[T],
    { track = true } = {},
  ): Promise<PendingWrite | undefined> {
    this.ensureOpen(type);
    await this.ensureAckListener();
    const event = createEvent(type, data, { source: this.eventSource() }) as AnySpineEvent;
    // Tracked before publishing, so an acknowledgement that arrives first is not missed.
    const pending = track ? this.track(event.id, event.type, event.subject) : undefined;
    try {
      await this.publishEvent(event);
    } catch (error) {
      this.pending.delete(event.id);
      throw error;
    }
    return pending;
  }

  private eventSource(): string {
    return `//superspine/writers/${encodeURIComponent(this.sessionWriterId)}`;
  }

  private async publishEvent(event: AnySpineEvent): Promise<void> {
    const message = encodePubSubMessage(event);
    try {
      await this.writes.publishMessage({
        data: message.data,
        attributes: { ...message.attributes },
        orderingKey: message.orderingKey,
      });
    } catch (error) {
      // A failed publish pauses its ordering key until resumed.
      this.writes.resumePublishing(message.orderingKey);
      throw new PublishError(event.type, event.subject, (error as { code?: number }).code, { cause: error });
    }
  }

  private track(eventId: string, type: EventTypeName, path: string): PendingWrite {
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Nobody may be waiting when close() rejects it; that must not count as unhandled.
    promise.catch(() => undefined);
    const pending: PendingWrite = { eventId, type, path, promise, resolve, reject };
    this.pending.set(eventId, pending);
    return pending;
  }

  private async waitFor(writes: PendingWrite[], timeoutMs: number): Promise<void> {
    if (writes.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const missing = writes.filter((w) => this.pending.has(w.eventId));
        const shown = missing.slice(0, 10).map((w) => `${w.type} ${w.path} (event ${w.eventId})`);
        const more = missing.length > 10 ? ` and ${missing.length - 10} more` : '';
        reject(
          new TimeoutError(
            `timed out after ${timeoutMs} ms: ${missing.length} of ${writes.length} writes not materialized: ${shown.join(', ')}${more}`,
          ),
        );
      }, timeoutMs);
    });
    try {
      await Promise.race([Promise.all(writes.map((w) => w.promise)), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * This client's subscription settings. On the emulator without a dead-letter policy: the
   * emulator's dead-letter forwarding crashes its delivery for good (ARCHITECTURE.md), and these
   * subscriptions ack every message they receive, so the policy only matters on Google Cloud.
   */
  private clientSubscriptionSpec(): Topology['clientSubscriptions'] {
    if (!this.pubsub.isEmulator) return this.topology.clientSubscriptions;
    const { deadLetterPolicy: _notLocally, ...spec } = this.topology.clientSubscriptions;
    return spec;
  }

  /** A subscription on the group-changes topic that receives the acknowledgements of this client's writes. */
  private ensureAckListener(): Promise<Subscription> {
    this.ackListener ??= (async () => {
      const topic = this.topology.topics.groupChanges.name;
      const digest = createHash('sha256').update(this.sessionWriterId).digest('hex').slice(0, 24);
      const name = `${this.topology.prefix}ack-${digest}`;
      const quoted = quoteFilterValue(this.sessionWriterId);
      const metadata = subscriptionMetadata(this.topology, {
        ...this.clientSubscriptionSpec(),
        name,
        topic,
        enableMessageOrdering: false,
        ...(quoted
          ? { filter: `attributes.${WRITER_ATTRIBUTE} = ${quoted} OR attributes.${BATCH_ATTRIBUTE} = "true"` }
          : {}),
      });
      let subscription: Subscription;
      try {
        [subscription] = await this.pubsub.topic(topic).createSubscription(name, metadata as CreateSubscriptionOptions);
      } catch (error) {
        if ((error as { code?: number }).code === GrpcStatus.NOT_FOUND) {
          throw new InvalidArgumentError(
            `topic ${topic} does not exist in project ${this.topology.projectId}: is the mesh provisioned, with topic prefix ${JSON.stringify(this.topology.prefix)}?`,
          );
        }
        throw error;
      }
      subscription.on('message', (message: Message) => {
        const causeId = message.attributes[CAUSE_ATTRIBUTE];
        const mine = message.attributes[WRITER_ATTRIBUTE] === attributeValue(this.sessionWriterId);
        // A bundle's or a batch's change lists the writes it covers in its data.
        if (message.attributes[BATCH_ATTRIBUTE] === 'true' || (mine && message.attributes[BUNDLE_ATTRIBUTE] === 'true'))
          this.settleBatch(message);
        else if (mine && causeId) this.settle(causeId);
        message.ack();
      });
      subscription.on('error', (error) =>
        this.log.error('acknowledgement subscription failed', { subscription: name, error }),
      );
      return subscription;
    })();
    // A failed set-up (Pub/Sub unreachable) is tried again by the next write, not kept forever.
    this.ackListener.catch(() => {
      this.ackListener = undefined;
    });
    return this.ackListener;
  }

  private settle(eventId: string): void {
    const pending = this.pending.get(eventId);
    if (!pending) return;
    this.pending.delete(eventId);
    pending.resolve();
  }

  private settleBatch(message: Message): void {
    if (this.pending.size === 0) return;
    try {
      const event = fromPubSubMessage(message);
      if (event.type !== EventType.GroupChanged) return;
      for (const cause of event.data.causes ?? [])
        if (cause.writerId === this.sessionWriterId) this.settle(cause.eventId);
    } catch (error) {
      this.log.warn('unreadable batch acknowledgement', { messageId: message.id, error });
    }
  }

  private async deliver(
    path: ParsedPath,
    message: Message,
    callback: SubscriptionCallback,
    seam?: Set<string>,
  ): Promise<void> {
    try {
      if (message.attributes.type !== EventType.GroupChanged) return;
      const event = fromPubSubMessage(message);
      if (event.type !== EventType.GroupChanged) return;
      const { networkId, groupId, kind, unchanged, state } = event.data;
      if (unchanged || !pathMatches(path, networkId, groupId)) return;
      const covered = event.data.causes ? event.data.causes.map((c) => c.eventId) : [event.data.causeId];
      // Across the seam of a catch-up subscription: writes the archive part delivered are not delivered again.
      const eventIds = seam ? covered.filter((id) => !seam.has(seamKey(groupId, id))) : covered;
      if (eventIds.length === 0) return;
      // The state as of delivery: at least as new as the change, possibly newer (changes coalesce).
      const current = kind === 'deleted' ? null : (state ?? (await this.state.loadGroupState(networkId, groupId)));
      // Gone by now: the delete's own notification follows.
      if (kind === 'updated' && current === null) return;
      await callback(current, {
        networkId,
        groupId,
        path: changePath(networkId, groupId),
        kind,
        time: new Date(event.time),
        eventIds,
      });
    } catch (error) {
      this.log.error('subscriber callback failed', { messageId: message.id, error });
    } finally {
      message.ack();
    }
  }

  private async removeSubscription(subscription: Subscription): Promise<void> {
    try {
      await subscription.close();
      await subscription.delete();
    } catch (error) {
      if ((error as { code?: number }).code !== GrpcStatus.NOT_FOUND)
        this.log.warn('could not delete subscription', { subscription: subscription.name, error });
    }
  }
}
