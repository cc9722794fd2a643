import type { PredefinedBucketAcl, PredefinedObjectAcl } from './acl';

/** The emulator's records. Generations are numbers here (microseconds fit in 2^53) and strings on the wire. */

/** Object fields a caller may set on insert, patch, copy or compose; everything else is the service's. */
export interface WritableObjectFields {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  customTime?: string;
  storageClass?: string;
  temporaryHold?: boolean;
  eventBasedHold?: boolean;
  /** User metadata: string values only, as the service stores them. */
  metadata?: Record<string, string>;
  /** From the `predefinedAcl` query parameter, not the resource; read back by the ACL routes. */
  predefinedAcl?: PredefinedObjectAcl;
}

export const WRITABLE_OBJECT_FIELDS = [
  'contentType',
  'contentEncoding',
  'contentDisposition',
  'contentLanguage',
  'cacheControl',
  'customTime',
  'storageClass',
  'temporaryHold',
  'eventBasedHold',
  'metadata',
] as const satisfies ReadonlyArray<keyof WritableObjectFields>;

/** Where an object's bytes live (see blob-store.ts) and what they hash to. */
export interface ObjectContent {
  blobId: string;
  size: number;
  crc32c: string;
  /** Absent for composite objects, as in the service. */
  md5Hash?: string;
}

/** One generation of one object. */
export interface ObjectVersion extends WritableObjectFields, ObjectContent {
  bucket: string;
  name: string;
  generation: number;
  metageneration: number;
  /** Set on composite objects only. */
  componentCount?: number;
  timeCreated: string;
  updated: string;
  /** Set once the version is no longer live (versioned buckets keep it). */
  timeDeleted?: string;
}

/** Every stored generation of one object name. */
export interface ObjectEntry {
  live?: ObjectVersion;
  /** Older generations, oldest first; only versioned buckets keep any. */
  noncurrent: ObjectVersion[];
}

/** A bucket: service-owned fields plus whatever settings the caller gave (labels, versioning, ...). */
export interface BucketRecord {
  name: string;
  metageneration: number;
  timeCreated: string;
  updated: string;
  projectNumber: string;
  /** Caller-supplied settings, returned as given. */
  settings: Record<string, unknown>;
  /** From `predefinedAcl` / `predefinedDefaultObjectAcl`; read back by the ACL routes. */
  predefinedAcl?: PredefinedBucketAcl;
  predefinedDefaultObjectAcl?: PredefinedObjectAcl;
}

/** The result of a synchronous commit: what is now stored and which blobs are no longer referenced. */
export interface CommitResult<T> {
  value: T;
  releasedBlobs: string[];
}
