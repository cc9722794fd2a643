import { DEFAULT_LOCATION, locationTypeOf, retentionPeriodMs } from './bucket-fields';
import type { BucketRecord, ObjectVersion } from './model';

/** JSON API resources as the service returns them: int64 fields as strings, links pointing at the emulator. */

export type JsonResource = Record<string, unknown>;

/** `bucket` (when known) adds `retentionExpirationTime` under a retention policy. */
export function objectResource(object: ObjectVersion, baseUrl: string, bucket?: BucketRecord): JsonResource {
  const retentionMs = bucket && retentionPeriodMs(bucket);
  const encodedName = encodeURIComponent(object.name);
  const generation = String(object.generation);
  return {
    kind: 'storage#object',
    id: `${object.bucket}/${object.name}/${generation}`,
    selfLink: `${baseUrl}/storage/v1/b/${object.bucket}/o/${encodedName}`,
    mediaLink: `${baseUrl}/download/storage/v1/b/${object.bucket}/o/${encodedName}?generation=${generation}&alt=media`,
    name: object.name,
    bucket: object.bucket,
    generation,
    metageneration: String(object.metageneration),
    contentType: object.contentType ?? 'application/octet-stream',
    storageClass: object.storageClass ?? 'STANDARD',
    size: String(object.size),
    ...(object.md5Hash !== undefined && { md5Hash: object.md5Hash }),
    crc32c: object.crc32c,
    ...(object.componentCount !== undefined && { componentCount: object.componentCount }),
    etag: etagOf(object.generation, object.metageneration),
    timeCreated: object.timeCreated,
    updated: object.updated,
    timeStorageClassUpdated: object.timeCreated,
    timeFinalized: object.timeCreated,
    ...(object.timeDeleted !== undefined && { timeDeleted: object.timeDeleted }),
    ...optional(object, ['contentEncoding', 'contentDisposition', 'contentLanguage', 'cacheControl', 'customTime']),
    ...(object.temporaryHold !== undefined && { temporaryHold: object.temporaryHold }),
    ...(object.eventBasedHold !== undefined && { eventBasedHold: object.eventBasedHold }),
    ...(object.metadata !== undefined && { metadata: { ...object.metadata } }),
    ...(retentionMs !== undefined && {
      retentionExpirationTime: new Date(Date.parse(object.timeCreated) + retentionMs).toISOString(),
    }),
  };
}

export function bucketResource(bucket: BucketRecord, baseUrl: string): JsonResource {
  // Records written before locations were normalized may hold lower case.
  const location =
    typeof bucket.settings.location === 'string' ? bucket.settings.location.toUpperCase() : DEFAULT_LOCATION;
  return {
    kind: 'storage#bucket',
    selfLink: `${baseUrl}/storage/v1/b/${bucket.name}`,
    id: bucket.name,
    name: bucket.name,
    projectNumber: bucket.projectNumber,
    storageClass: 'STANDARD',
    rpo: 'DEFAULT',
    ...bucket.settings,
    location,
    locationType: locationTypeOf({ ...bucket.settings, location }),
    metageneration: String(bucket.metageneration),
    etag: etagOf(0, bucket.metageneration),
    timeCreated: bucket.timeCreated,
    updated: bucket.updated,
  };
}

/** Changes with every generation and metageneration, like the service's opaque etags. */
function etagOf(generation: number, metageneration: number): string {
  return Buffer.from(`${generation}:${metageneration}`).toString('base64');
}

function optional<T extends object, K extends keyof T>(source: T, keys: K[]): Partial<Pick<T, K>> {
  const picked: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) picked[key] = source[key];
  return picked;
}

/** `GET /b/:bucket/storageLayout`, which gcloud reads before `mv` and `rm -r`. */
export function storageLayoutResource(bucket: BucketRecord): JsonResource {
  const { location, locationType } = bucketResource(bucket, '');
  const placement = bucket.settings.customPlacementConfig;
  const namespace = bucket.settings.hierarchicalNamespace;
  return {
    kind: 'storage#storageLayout',
    bucket: bucket.name,
    location,
    locationType,
    ...(placement !== undefined && { customPlacementConfig: placement }),
    hierarchicalNamespace: typeof namespace === 'object' && namespace !== null ? namespace : { enabled: false },
  };
}
