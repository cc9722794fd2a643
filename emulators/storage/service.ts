import type { Logger } from '../../shared/log';
import type { PredefinedObjectAcl } from './acl';
import { newBucketSettings } from './bucket-fields';
import { BlobMissingError, type BlobStore } from './blob-store';
import { invalid, objectNotFound, required } from './errors';
import { crc32cOf, hashContent, verifyProvidedHashes, type ContentHashes, type ProvidedHashes } from './hashes';
import type { StateJournal } from './journal';
import type { ListObjectsOptions, ObjectListing } from './listing';
import type { BucketRecord, CommitResult, ObjectContent, ObjectVersion, WritableObjectFields } from './model';
import { validateBucketName, validateObjectName } from './names';
import { copyWritableFields, overrideFields, pickWritableFields } from './object-fields';
import { checkReadPreconditions, checkWritePreconditions, type Preconditions } from './preconditions';
import type { ObjectRateLimiter } from './rate-limit';
import type { ByteRange } from './ranges';
import { contentOf, type BucketAcls, type NewObject, type StorageState } from './state';
import type { StatsRecorder } from './stats';
import { UploadSessions, type UploadSessionRecord } from './uploads';

/** The most source objects one compose may name, as in the service. */
export const MAX_COMPOSE_SOURCES = 32;

export interface ObjectAddress {
  bucket: string;
  name: string;
  /** A specific generation; absent = the live one. */
  generation?: number;
}

export interface InsertObjectRequest {
  bucket: string;
  name: string;
  data: Buffer;
  fields: WritableObjectFields;
  preconditions: Preconditions;
  providedHashes: ProvidedHashes;
}

export interface StartUploadRequest {
  bucket: string;
  name: string;
  fields: WritableObjectFields;
  preconditions: Preconditions;
  declaredSize?: number;
  providedHashes: ProvidedHashes;
}

export interface RewriteRequest {
  source: ObjectAddress;
  sourcePreconditions: Preconditions;
  destination: { bucket: string; name: string };
  destinationPreconditions: Preconditions;
  /** Object resource fields that override the source's metadata. */
  overrides: Record<string, unknown> | undefined;
  /** The copy's ACL (`destinationPredefinedAcl`); absent: the bucket's default, as the service. */
  predefinedAcl?: PredefinedObjectAcl;
}

export interface ComposeRequest {
  bucket: string;
  name: string;
  destination: Record<string, unknown> | undefined;
  sources: Array<{ name: string; generation?: number; ifGenerationMatch?: number }>;
  preconditions: Preconditions;
  predefinedAcl?: PredefinedObjectAcl;
}

export interface ServiceParts {
  state: StorageState;
  blobs: BlobStore;
  journal: StateJournal;
  stats: StatsRecorder;
  rateLimiter?: ObjectRateLimiter;
  logger: Logger;
}

/**
 * The storage operations behind the HTTP routes. Each mutation stages its bytes first, then
 * checks and commits in one synchronous step on `StorageState`, then waits until the journal
 * has made the change durable before the caller answers; blobs a commit released are deleted
 * only after that.
 */
export class StorageService {
  readonly uploads: UploadSessions;
  private readonly state: StorageState;
  private readonly blobs: BlobStore;
  private readonly journal: StateJournal;
  private readonly stats: StatsRecorder;
  private readonly rateLimiter: ObjectRateLimiter | undefined;
  private readonly logger: Logger;

  constructor(parts: ServiceParts) {
    this.state = parts.state;
    this.blobs = parts.blobs;
    this.journal = parts.journal;
    this.stats = parts.stats;
    this.rateLimiter = parts.rateLimiter;
    this.logger = parts.logger;
    this.uploads = new UploadSessions(this.blobs, this.journal, {
      precheck: (record) => this.precheckUpload(record),
      commit: (record, blobId, hashes) => this.commitUpload(record, blobId, hashes),
    });
  }

  // ---- buckets ----

  async insertBucket(resource: Record<string, unknown>, acls: BucketAcls = {}): Promise<BucketRecord> {
    const name = resource.name;
    if (typeof name !== 'string' || name === '') throw required('resource.name');
    validateBucketName(name);
    const record = this.state.createBucket(name, newBucketSettings(resource, new Date().toISOString()), acls);
    await this.journal.saveBucket(name);
    return record;
  }

  getBucket(name: string, preconditions: Preconditions): BucketRecord {
    return this.state.getBucket(name, preconditions);
  }

  listBuckets(options: { prefix?: string; pageToken?: string; maxResults?: number }) {
    return this.state.listBuckets(options);
  }

  async patchBucket(
    name: string,
    patch: Record<string, unknown>,
    preconditions: Preconditions,
    acls: BucketAcls = {},
  ): Promise<BucketRecord> {
    const record = this.state.patchBucket(name, patch, preconditions, acls);
    await this.journal.saveBucket(name);
    return record;
  }

  async lockRetentionPolicy(name: string, preconditions: Preconditions): Promise<BucketRecord> {
    const record = this.state.lockRetentionPolicy(name, preconditions);
    await this.journal.saveBucket(name);
    return record;
  }

  /** The bucket's record, or undefined when there is no such bucket. */
  findBucket(name: string): BucketRecord | undefined {
    return this.state.bucketRecordOf(name);
  }

  async deleteBucket(name: string, preconditions: Preconditions): Promise<void> {
    this.state.deleteBucket(name, preconditions);
    await this.journal.saveBucket(name);
  }

  // ---- objects ----

  /** Metadata of the live object (or one generation); 412 / 304 for failed read preconditions. */
  getObject(address: ObjectAddress, preconditions: Preconditions): ObjectVersion {
    const version = this.state.getObject(address.bucket, address.name, address.generation);
    checkReadPreconditions(preconditions, version);
    return version;
  }

  /**
   * The object's metadata and bytes (all, or a range). If the object is replaced while its old
   * bytes are being read they may be gone; the read then starts over on the new generation.
   */
  async readObject(
    address: ObjectAddress,
    preconditions: Preconditions,
    rangeOf: (version: ObjectVersion) => ByteRange | undefined,
  ): Promise<{ version: ObjectVersion; data: Buffer; range: ByteRange | undefined }> {
    for (let attempt = 0; ; attempt++) {
      const version = this.getObject(address, preconditions);
      const range = rangeOf(version);
      try {
        const data = await this.blobs.read(version.blobId, range?.start ?? 0, range?.end ?? version.size);
        this.stats.download();
        return { version, data, range };
      } catch (error) {
        if (!(error instanceof BlobMissingError)) throw error;
        if (address.generation !== undefined || attempt >= 3) throw objectNotFound(address.bucket, address.name);
      }
    }
  }

  listObjects(bucket: string, options: ListObjectsOptions): ObjectListing {
    return this.state.listObjects(bucket, options);
  }

  /** A one-shot upload (media or multipart). */
  async insertObject(request: InsertObjectRequest): Promise<ObjectVersion> {
    validateObjectName(request.name);
    this.state.getBucket(request.bucket);
    const hashes = hashContent(request.data);
    verifyProvidedHashes(request.providedHashes, hashes);
    const blobId = await this.blobs.put(request.data);
    return this.commitStaged(request, { blobId, size: request.data.length, ...hashes }, 'insert');
  }

  async startUpload(request: StartUploadRequest): Promise<string> {
    validateObjectName(request.name);
    this.state.getBucket(request.bucket);
    return this.uploads.start(request);
  }

  async patchObject(
    address: ObjectAddress,
    patch: Record<string, unknown>,
    preconditions: Preconditions,
    predefinedAcl?: PredefinedObjectAcl,
  ): Promise<ObjectVersion> {
    const version = this.state.patchObject(
      address.bucket,
      address.name,
      address.generation,
      patch,
      preconditions,
      predefinedAcl,
    );
    await this.journal.saveObject(address.bucket, address.name);
    return version;
  }

  async deleteObject(address: ObjectAddress, preconditions: Preconditions): Promise<void> {
    const result = this.state.deleteObject(address.bucket, address.name, address.generation, preconditions);
    await this.persistObject(address.bucket, address.name, result);
  }

  /**
   * Copy / rewrite. The destination shares the source's bytes, so reading the source, both
   * precondition checks and the commit happen in one synchronous step.
   */
  async rewriteObject(request: RewriteRequest): Promise<ObjectVersion> {
    const { source, destination } = request;
    validateObjectName(destination.name);
    this.state.getBucket(destination.bucket);
    const from = this.state.getObject(source.bucket, source.name, source.generation);
    checkWritePreconditions(request.sourcePreconditions, from);
    const { predefinedAcl: _sourceAcl, ...sourceFields } = copyWritableFields(from);
    const next: NewObject = {
      content: contentOf(from),
      fields: {
        ...overrideFields(sourceFields, request.overrides),
        ...(request.predefinedAcl !== undefined && { predefinedAcl: request.predefinedAcl }),
      },
      ...(from.componentCount !== undefined && { componentCount: from.componentCount }),
    };
    const result = this.state.writeObject(
      destination.bucket,
      destination.name,
      next,
      request.destinationPreconditions,
      'copy',
    );
    await this.persistObject(destination.bucket, destination.name, result);
    return result.value;
  }

  /** Renames an object within its bucket (objects.move). */
  async moveObject(request: RewriteRequest): Promise<ObjectVersion> {
    const { source, destination } = request;
    validateObjectName(destination.name);
    const result = this.state.moveObject(
      source.bucket,
      {
        name: source.name,
        ...(source.generation !== undefined && { generation: source.generation }),
        preconditions: request.sourcePreconditions,
      },
      { name: destination.name, preconditions: request.destinationPreconditions },
    );
    await Promise.all([
      this.persistObject(source.bucket, destination.name, result),
      this.journal.saveObject(source.bucket, source.name),
    ]);
    return result.value;
  }

  /** Concatenates up to 32 objects of one bucket into a composite object (crc32c only, no md5). */
  async composeObject(request: ComposeRequest): Promise<ObjectVersion> {
    validateObjectName(request.name);
    if (request.sources.length === 0) throw required('sourceObjects');
    if (request.sources.length > MAX_COMPOSE_SOURCES) {
      throw invalid(
        `The number of source components provided (${request.sources.length}) exceeds the maximum (${MAX_COMPOSE_SOURCES}).`,
      );
    }
    const versions = request.sources.map((source) => {
      const version = this.state.getObject(request.bucket, source.name, source.generation);
      const { ifGenerationMatch } = source;
      checkWritePreconditions(ifGenerationMatch === undefined ? {} : { ifGenerationMatch }, version);
      return version;
    });
    const parts = await Promise.all(versions.map((version) => this.blobs.read(version.blobId, 0, version.size)));
    const data = Buffer.concat(parts);
    const blobId = await this.blobs.put(data);
    return this.commitStaged(
      {
        bucket: request.bucket,
        name: request.name,
        fields: {
          ...pickWritableFields(request.destination),
          ...(request.predefinedAcl !== undefined && { predefinedAcl: request.predefinedAcl }),
        },
        preconditions: request.preconditions,
      },
      { blobId, size: data.length, crc32c: crc32cOf(parts) },
      'compose',
      versions.reduce((sum, version) => sum + (version.componentCount ?? 1), 0),
    );
  }

  // ---- emulator controls ----

  statsSnapshot() {
    return { ...this.stats.snapshot(), activeUploads: this.uploads.activeCount() };
  }

  resetStats(): void {
    this.stats.reset();
  }

  /** Deletes every bucket, object and upload session and zeroes the counters. */
  async reset(): Promise<void> {
    const buckets = this.state.bucketNames();
    const objects = buckets.flatMap((bucket) => this.state.objectNames(bucket).map((name) => ({ bucket, name })));
    const blobs = this.state.clear();
    await this.uploads.clear();
    await Promise.all(objects.map(({ bucket, name }) => this.journal.saveObject(bucket, name)));
    await Promise.all(buckets.map((bucket) => this.journal.saveBucket(bucket)));
    await this.blobs.remove(blobs);
    this.rateLimiter?.clear();
    this.stats.reset();
  }

  /** Deletes blobs that no stored version refers to (left by a crash between two steps). */
  async sweepOrphanBlobs(): Promise<number> {
    const referenced = this.state.referencedBlobs();
    const orphans = (await this.blobs.list()).filter((id) => !referenced.has(id));
    await this.blobs.remove(orphans);
    return orphans.length;
  }

  // ---- internals ----

  /** Commits bytes already staged as a blob; a refused commit deletes the blob again. */
  private async commitStaged(
    target: { bucket: string; name: string; fields: WritableObjectFields; preconditions: Preconditions },
    content: ObjectContent,
    kind: 'insert' | 'compose',
    componentCount?: number,
  ): Promise<ObjectVersion> {
    let result: CommitResult<ObjectVersion>;
    try {
      const next: NewObject = {
        content,
        fields: target.fields,
        ...(componentCount !== undefined && { componentCount }),
      };
      result = this.state.writeObject(target.bucket, target.name, next, target.preconditions, kind);
    } catch (error) {
      await this.blobs.remove([content.blobId]);
      throw error;
    }
    await this.persistObject(target.bucket, target.name, result);
    return result.value;
  }

  private precheckUpload(record: UploadSessionRecord): void {
    this.state.precheckWrite(record.bucket, record.name, record.preconditions);
  }

  private commitUpload(record: UploadSessionRecord, blobId: string, hashes: ContentHashes): Promise<ObjectVersion> {
    return this.commitStaged(record, { blobId, size: record.received, ...hashes }, 'insert');
  }

  private async persistObject(bucket: string, name: string, result: CommitResult<unknown>): Promise<void> {
    await this.journal.saveObject(bucket, name);
    if (result.releasedBlobs.length > 0) {
      await this.blobs.remove(result.releasedBlobs).catch((error: unknown) => {
        this.logger.warn('could not delete released blobs', { error, blobs: result.releasedBlobs });
      });
    }
  }
}
