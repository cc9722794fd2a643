import type { PredefinedObjectAcl } from './acl';
import { isPlainObject, lockedRetentionSettings, patchedBucketSettings, retentionPeriodMs } from './bucket-fields';
import {
  bucketAlreadyOwned,
  bucketNotEmpty,
  bucketNotFound,
  objectNotFound,
  objectUnderHold,
  objectUnderRetention,
  required,
} from './errors';
import type { GenerationClock } from './generations';
import { listObjects, pageByName, type ListObjectsOptions, type ObjectListing } from './listing';
import type {
  BucketRecord,
  CommitResult,
  ObjectContent,
  ObjectEntry,
  ObjectVersion,
  WritableObjectFields,
} from './model';
import { applyPatch, copyWritableFields } from './object-fields';
import { checkReadPreconditions, checkWritePreconditions, type Preconditions } from './preconditions';
import type { ObjectRateLimiter } from './rate-limit';

/** The predefined ACLs a bucket insert or patch may name. */
export type BucketAcls = Pick<BucketRecord, 'predefinedAcl' | 'predefinedDefaultObjectAcl'>;

export type ObjectWriteKind = 'insert' | 'patch' | 'delete' | 'copy' | 'compose' | 'move';

export interface StateHooks {
  /** Called once per committed object mutation, inside the commit. */
  onObjectWrite?(kind: ObjectWriteKind, bucket: string, name: string): void;
}

interface BucketState {
  record: BucketRecord;
  objects: Map<string, ObjectEntry>;
  /** Object names in listing order; rebuilt lazily after a name appears or disappears. */
  sortedNames: string[] | null;
}

/** What a new generation is made of. */
export interface NewObject {
  content: ObjectContent;
  fields: WritableObjectFields;
  componentCount?: number;
}

/**
 * The emulator's state, in memory. Every method is synchronous: a precondition check and the
 * change it guards happen in one tick, so two writers racing on `ifGenerationMatch` cannot both
 * win. Blob bytes live elsewhere; this class counts references to them and reports the ones a
 * commit let go of, so the caller deletes them once the new state is durable.
 */
export class StorageState {
  private readonly buckets = new Map<string, BucketState>();
  private readonly blobReferences = new Map<string, number>();

  constructor(
    private readonly clock: GenerationClock,
    private readonly projectNumber: string,
    private readonly rateLimiter: ObjectRateLimiter | undefined,
    private readonly hooks: StateHooks = {},
  ) {}

  // ---- buckets ----

  createBucket(name: string, settings: Record<string, unknown>, acls: BucketAcls = {}): BucketRecord {
    if (this.buckets.has(name)) throw bucketAlreadyOwned();
    const now = new Date().toISOString();
    const record: BucketRecord = {
      name,
      metageneration: 1,
      timeCreated: now,
      updated: now,
      projectNumber: this.projectNumber,
      settings,
      ...dropUndefined(acls),
    };
    this.buckets.set(name, { record, objects: new Map(), sortedNames: null });
    return record;
  }

  getBucket(name: string, preconditions: Preconditions = {}): BucketRecord {
    const record = this.bucketState(name).record;
    checkReadPreconditions(preconditions, { generation: 0, metageneration: record.metageneration });
    return record;
  }

  hasBucket(name: string): boolean {
    return this.buckets.has(name);
  }

  listBuckets(options: { prefix?: string; pageToken?: string; maxResults?: number }) {
    const sorted = [...this.buckets.values()].map((state) => state.record).sort((a, b) => compare(a.name, b.name));
    return pageByName(sorted, options);
  }

  /** Applies a PATCH (see `patchedBucketSettings`) and bumps the metageneration. */
  patchBucket(
    name: string,
    patch: Record<string, unknown>,
    preconditions: Preconditions,
    acls: BucketAcls = {},
  ): BucketRecord {
    const state = this.bucketState(name);
    checkWritePreconditions(preconditions, { generation: 0, metageneration: state.record.metageneration });
    return this.replaceBucketSettings(
      state,
      patchedBucketSettings(state.record, patch, new Date().toISOString()),
      acls,
    );
  }

  /** Locks the retention policy for good; the service requires ifMetagenerationMatch. */
  lockRetentionPolicy(name: string, preconditions: Preconditions): BucketRecord {
    const state = this.bucketState(name);
    if (preconditions.ifMetagenerationMatch === undefined) throw required('ifMetagenerationMatch');
    checkWritePreconditions(preconditions, { generation: 0, metageneration: state.record.metageneration });
    return this.replaceBucketSettings(state, lockedRetentionSettings(state.record));
  }

  /** Fails with 409 while any generation of any object remains, as the service does. */
  deleteBucket(name: string, preconditions: Preconditions): void {
    const state = this.bucketState(name);
    checkWritePreconditions(preconditions, { generation: 0, metageneration: state.record.metageneration });
    if (state.objects.size > 0) throw bucketNotEmpty();
    this.buckets.delete(name);
  }

  // ---- objects ----

  /** The live object, or the given generation of it (live or noncurrent). */
  getObject(bucket: string, name: string, generation?: number): ObjectVersion {
    const entry = this.bucketState(bucket).objects.get(name);
    const version =
      generation === undefined
        ? entry?.live
        : entry?.live?.generation === generation
          ? entry.live
          : entry?.noncurrent.find((candidate) => candidate.generation === generation);
    if (!version) throw objectNotFound(bucket, name);
    return version;
  }

  /**
   * Throws exactly what `writeObject` would (404 bucket, 412, 403 hold, 429) without changing
   * anything: lets a resumable upload keep its bytes when the commit would be refused for now.
   */
  precheckWrite(bucket: string, name: string, preconditions: Preconditions): void {
    const state = this.bucketState(bucket);
    const live = state.objects.get(name)?.live;
    checkWritePreconditions(preconditions, live);
    if (live) assertRemovable(state.record, live);
    this.rateLimiter?.check(bucket, name);
  }

  /** Commits a new live generation (insert, copy, compose) if the preconditions hold. */
  writeObject(
    bucket: string,
    name: string,
    next: NewObject,
    preconditions: Preconditions,
    kind: ObjectWriteKind,
  ): CommitResult<ObjectVersion> {
    this.precheckWrite(bucket, name, preconditions);
    this.rateLimiter?.take(bucket, name);
    const result = this.replaceLive(this.bucketState(bucket), name, next);
    this.hooks.onObjectWrite?.(kind, bucket, name);
    return result;
  }

  /**
   * Renames within a bucket: every check for both names runs before either changes, so the
   * new name and the removal of the old one commit together or not at all.
   */
  moveObject(
    bucket: string,
    source: { name: string; generation?: number; preconditions: Preconditions },
    destination: { name: string; preconditions: Preconditions },
  ): CommitResult<ObjectVersion> {
    const state = this.bucketState(bucket);
    const from = this.getObject(bucket, source.name, source.generation);
    checkWritePreconditions(source.preconditions, from);
    assertRemovable(state.record, from);
    this.rateLimiter?.check(bucket, source.name);
    this.precheckWrite(bucket, destination.name, destination.preconditions);

    this.rateLimiter?.take(bucket, source.name);
    this.rateLimiter?.take(bucket, destination.name);
    const written = this.replaceLive(state, destination.name, {
      content: contentOf(from),
      fields: copyWritableFields(from),
      ...(from.componentCount !== undefined && { componentCount: from.componentCount }),
    });
    const releasedBlobs = [...written.releasedBlobs, ...this.removeVersion(state, source.name, from)];
    this.hooks.onObjectWrite?.('move', bucket, destination.name);
    this.hooks.onObjectWrite?.('delete', bucket, source.name);
    return { value: written.value, releasedBlobs };
  }

  /** Applies a metadata patch to one generation and bumps its metageneration. */
  patchObject(
    bucket: string,
    name: string,
    generation: number | undefined,
    patch: Record<string, unknown>,
    preconditions: Preconditions,
    predefinedAcl?: PredefinedObjectAcl,
  ): ObjectVersion {
    const state = this.bucketState(bucket);
    const current = this.getObject(bucket, name, generation);
    checkWritePreconditions(preconditions, current);
    const fields = applyPatch(copyWritableFields(current), patch);
    if (predefinedAcl !== undefined) fields.predefinedAcl = predefinedAcl;
    this.rateLimiter?.take(bucket, name);

    const patched: ObjectVersion = {
      ...fields,
      ...contentOf(current),
      ...(current.componentCount !== undefined && { componentCount: current.componentCount }),
      bucket,
      name,
      generation: current.generation,
      metageneration: current.metageneration + 1,
      timeCreated: current.timeCreated,
      updated: new Date().toISOString(),
      ...(current.timeDeleted !== undefined && { timeDeleted: current.timeDeleted }),
    };
    const entry = state.objects.get(name)!;
    if (entry.live === current) entry.live = patched;
    else entry.noncurrent = entry.noncurrent.map((version) => (version === current ? patched : version));
    this.hooks.onObjectWrite?.('patch', bucket, name);
    return patched;
  }

  /** Deletes the live object (kept as noncurrent in a versioned bucket) or one given generation. */
  deleteObject(
    bucket: string,
    name: string,
    generation: number | undefined,
    preconditions: Preconditions,
  ): CommitResult<ObjectVersion> {
    const state = this.bucketState(bucket);
    const current = this.getObject(bucket, name, generation);
    checkWritePreconditions(preconditions, current);
    assertRemovable(state.record, current);
    this.rateLimiter?.take(bucket, name);
    // Naming the generation deletes it for good, even the live one of a versioned bucket.
    const releasedBlobs = this.removeVersion(state, name, current, { permanently: generation !== undefined });
    this.hooks.onObjectWrite?.('delete', bucket, name);
    return { value: current, releasedBlobs };
  }

  listObjects(bucket: string, options: ListObjectsOptions): ObjectListing {
    const state = this.bucketState(bucket);
    state.sortedNames ??= [...state.objects.keys()].sort(compare);
    return listObjects(state.sortedNames, state.objects, options);
  }

  /** The stored entry of one name (for persistence), or undefined once it is gone. */
  entryOf(bucket: string, name: string): ObjectEntry | undefined {
    return this.buckets.get(bucket)?.objects.get(name);
  }

  bucketRecordOf(bucket: string): BucketRecord | undefined {
    return this.buckets.get(bucket)?.record;
  }

  /** Every blob a stored version refers to (for sweeping orphans after a restart). */
  referencedBlobs(): Set<string> {
    return new Set(this.blobReferences.keys());
  }

  // ---- loading from a data directory ----

  restoreBucket(record: BucketRecord): void {
    this.buckets.set(record.name, { record, objects: new Map(), sortedNames: null });
  }

  restoreEntry(bucket: string, name: string, entry: ObjectEntry): void {
    const state = this.bucketState(bucket);
    state.objects.set(name, entry);
    state.sortedNames = null;
    for (const version of [...entry.noncurrent, ...(entry.live ? [entry.live] : [])]) {
      this.retain(version.blobId);
      this.clock.observe(version.generation);
    }
  }

  /** Forgets everything (tests); returns the blobs that are no longer referenced. */
  clear(): string[] {
    const blobs = [...this.blobReferences.keys()];
    this.buckets.clear();
    this.blobReferences.clear();
    return blobs;
  }

  bucketNames(): string[] {
    return [...this.buckets.keys()];
  }

  objectNames(bucket: string): string[] {
    return [...(this.buckets.get(bucket)?.objects.keys() ?? [])];
  }

  // ---- internals ----

  private replaceBucketSettings(
    state: BucketState,
    settings: Record<string, unknown>,
    acls: BucketAcls = {},
  ): BucketRecord {
    state.record = {
      ...state.record,
      ...dropUndefined(acls),
      settings,
      metageneration: state.record.metageneration + 1,
      updated: new Date().toISOString(),
    };
    return state.record;
  }

  private bucketState(name: string): BucketState {
    const state = this.buckets.get(name);
    if (!state) throw bucketNotFound();
    return state;
  }

  /** Makes `next` the live generation of `name`; the previous one is kept (versioned) or released. */
  private replaceLive(state: BucketState, name: string, next: NewObject): CommitResult<ObjectVersion> {
    const now = new Date().toISOString();
    const { predefinedDefaultObjectAcl } = state.record;
    const version: ObjectVersion = {
      ...(state.record.settings.defaultEventBasedHold === true && { eventBasedHold: true }),
      ...(predefinedDefaultObjectAcl !== undefined && { predefinedAcl: predefinedDefaultObjectAcl }),
      ...next.fields,
      ...next.content,
      ...(next.componentCount !== undefined && { componentCount: next.componentCount }),
      bucket: state.record.name,
      name,
      generation: this.clock.next(),
      metageneration: 1,
      timeCreated: now,
      updated: now,
    };
    const releasedBlobs: string[] = [];
    this.retain(version.blobId);
    let entry = state.objects.get(name);
    if (!entry) {
      entry = { noncurrent: [] };
      state.objects.set(name, entry);
      state.sortedNames = null;
    }
    const previous = entry.live;
    entry.live = version;
    if (previous) {
      if (isVersioned(state.record)) entry.noncurrent.push({ ...previous, timeDeleted: now });
      else this.release(previous.blobId, releasedBlobs);
    }
    return { value: version, releasedBlobs };
  }

  /** Removes one stored generation; a live one stays as noncurrent in a versioned bucket unless removed permanently. */
  private removeVersion(
    state: BucketState,
    name: string,
    version: ObjectVersion,
    { permanently = false } = {},
  ): string[] {
    const entry = state.objects.get(name)!;
    const releasedBlobs: string[] = [];
    if (entry.live === version) {
      entry.live = undefined;
      if (isVersioned(state.record) && !permanently)
        entry.noncurrent.push({ ...version, timeDeleted: new Date().toISOString() });
      else this.release(version.blobId, releasedBlobs);
    } else {
      entry.noncurrent = entry.noncurrent.filter((candidate) => candidate !== version);
      this.release(version.blobId, releasedBlobs);
    }
    if (!entry.live && entry.noncurrent.length === 0) {
      state.objects.delete(name);
      state.sortedNames = null;
    }
    return releasedBlobs;
  }

  private retain(blobId: string): void {
    this.blobReferences.set(blobId, (this.blobReferences.get(blobId) ?? 0) + 1);
  }

  private release(blobId: string, released: string[]): void {
    const count = (this.blobReferences.get(blobId) ?? 1) - 1;
    if (count > 0) {
      this.blobReferences.set(blobId, count);
    } else {
      this.blobReferences.delete(blobId);
      released.push(blobId);
    }
  }
}

/** The bytes of a version and their hashes (a copy shares them). */
export function contentOf(version: ObjectVersion): ObjectContent {
  return {
    blobId: version.blobId,
    size: version.size,
    crc32c: version.crc32c,
    ...(version.md5Hash !== undefined && { md5Hash: version.md5Hash }),
  };
}

/** A held object, or one younger than the bucket's retention period, cannot be deleted or replaced. */
function assertRemovable(bucket: BucketRecord, version: ObjectVersion): void {
  if (version.temporaryHold) throw objectUnderHold(version.bucket, version.name, 'Temporary');
  if (version.eventBasedHold) throw objectUnderHold(version.bucket, version.name, 'Event-Based');
  const until = retentionExpiration(bucket, version);
  if (until !== undefined && until > Date.now())
    throw objectUnderRetention(version.bucket, version.name, new Date(until).toISOString());
}

/** When the bucket's retention policy lets this version go (ms since epoch), if it has one. */
export function retentionExpiration(bucket: BucketRecord, version: ObjectVersion): number | undefined {
  const period = retentionPeriodMs(bucket);
  return period === undefined ? undefined : Date.parse(version.timeCreated) + period;
}

function isVersioned(record: BucketRecord): boolean {
  const versioning = record.settings.versioning;
  return isPlainObject(versioning) && versioning.enabled === true;
}

function dropUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Lexicographic order of the names' code points, as listings are ordered. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
