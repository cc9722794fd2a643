import { StorageApiError, invalid } from './errors';
import type { BucketRecord, ObjectVersion } from './model';

/**
 * Legacy ACLs, read-only. The emulator authorizes nothing, so an ACL changes no access; but
 * the predefined ACL given when a bucket or object was made (`predefinedAcl`,
 * `predefinedDefaultObjectAcl`) is kept and read back as the entries the service would list.
 * The object's owner is the project's owners: locally there is no caller identity.
 */

export const PREDEFINED_OBJECT_ACLS = [
  'authenticatedRead',
  'bucketOwnerFullControl',
  'bucketOwnerRead',
  'private',
  'projectPrivate',
  'publicRead',
] as const;
export type PredefinedObjectAcl = (typeof PREDEFINED_OBJECT_ACLS)[number];

export const PREDEFINED_BUCKET_ACLS = [
  'authenticatedRead',
  'private',
  'projectPrivate',
  'publicRead',
  'publicReadWrite',
] as const;
export type PredefinedBucketAcl = (typeof PREDEFINED_BUCKET_ACLS)[number];

/** What the service applies when a request names none. */
export const DEFAULT_ACL = 'projectPrivate';

type Role = 'OWNER' | 'WRITER' | 'READER';
interface AclEntry {
  entity: string;
  role: Role;
  projectTeam?: { projectNumber: string; team: 'owners' | 'editors' | 'viewers' };
}

export function parsePredefinedObjectAcl(
  value: string | undefined,
  parameter: string,
): PredefinedObjectAcl | undefined {
  if (value === undefined) return undefined;
  if (!(PREDEFINED_OBJECT_ACLS as readonly string[]).includes(value))
    throw invalid(`Invalid value for ${parameter}: ${value}`);
  return value as PredefinedObjectAcl;
}

export function parsePredefinedBucketAcl(
  value: string | undefined,
  parameter: string,
): PredefinedBucketAcl | undefined {
  if (value === undefined) return undefined;
  if (!(PREDEFINED_BUCKET_ACLS as readonly string[]).includes(value))
    throw invalid(`Invalid value for ${parameter}: ${value}`);
  return value as PredefinedBucketAcl;
}

/** Uniform bucket-level access turns legacy ACLs off, as the service does (400 on any use). */
export function assertLegacyAclAllowed(bucket: BucketRecord, what: 'object' | 'bucket'): void {
  const config = bucket.settings.iamConfiguration as { uniformBucketLevelAccess?: { enabled?: unknown } } | undefined;
  if (config?.uniformBucketLevelAccess?.enabled === true) {
    throw new StorageApiError(
      400,
      'invalid',
      `Cannot use legacy ACL for ${what === 'object' ? 'an object' : 'a bucket'} when uniform bucket-level access is enabled. ` +
        'Read more at https://cloud.google.com/storage/docs/uniform-bucket-level-access',
    );
  }
}

function team(projectNumber: string, name: 'owners' | 'editors' | 'viewers', role: Role): AclEntry {
  return { entity: `project-${name}-${projectNumber}`, role, projectTeam: { projectNumber, team: name } };
}

function objectEntries(acl: PredefinedObjectAcl, projectNumber: string): AclEntry[] {
  const owner = team(projectNumber, 'owners', 'OWNER');
  switch (acl) {
    case 'private':
      return [owner];
    case 'bucketOwnerRead':
      return [owner, team(projectNumber, 'editors', 'READER')];
    case 'bucketOwnerFullControl':
      return [owner, team(projectNumber, 'editors', 'OWNER')];
    case 'projectPrivate':
      return [owner, team(projectNumber, 'editors', 'OWNER'), team(projectNumber, 'viewers', 'READER')];
    case 'authenticatedRead':
      return [owner, { entity: 'allAuthenticatedUsers', role: 'READER' }];
    case 'publicRead':
      return [owner, { entity: 'allUsers', role: 'READER' }];
  }
}

function bucketEntries(acl: PredefinedBucketAcl, projectNumber: string): AclEntry[] {
  const projectPrivate = [
    team(projectNumber, 'owners', 'OWNER'),
    team(projectNumber, 'editors', 'OWNER'),
    team(projectNumber, 'viewers', 'READER'),
  ];
  switch (acl) {
    case 'private':
      return [team(projectNumber, 'owners', 'OWNER')];
    case 'projectPrivate':
      return projectPrivate;
    case 'authenticatedRead':
      return [...projectPrivate, { entity: 'allAuthenticatedUsers', role: 'READER' }];
    case 'publicRead':
      return [...projectPrivate, { entity: 'allUsers', role: 'READER' }];
    case 'publicReadWrite':
      return [...projectPrivate, { entity: 'allUsers', role: 'WRITER' }];
  }
}

const etag = (...parts: Array<string | number>) => Buffer.from(parts.join(':')).toString('base64');

export function objectAclResources(bucket: BucketRecord, object: ObjectVersion, baseUrl: string) {
  const objectLink = `${baseUrl}/storage/v1/b/${bucket.name}/o/${encodeURIComponent(object.name)}`;
  return objectEntries(object.predefinedAcl ?? DEFAULT_ACL, bucket.projectNumber).map((entry) => ({
    kind: 'storage#objectAccessControl',
    id: `${bucket.name}/${object.name}/${object.generation}/${entry.entity}`,
    selfLink: `${objectLink}/acl/${encodeURIComponent(entry.entity)}`,
    bucket: bucket.name,
    object: object.name,
    generation: String(object.generation),
    ...entry,
    etag: etag(object.generation, object.metageneration),
  }));
}

export function bucketAclResources(bucket: BucketRecord, baseUrl: string) {
  return bucketEntries(bucket.predefinedAcl ?? DEFAULT_ACL, bucket.projectNumber).map((entry) => ({
    kind: 'storage#bucketAccessControl',
    id: `${bucket.name}/${entry.entity}`,
    selfLink: `${baseUrl}/storage/v1/b/${bucket.name}/acl/${encodeURIComponent(entry.entity)}`,
    bucket: bucket.name,
    ...entry,
    etag: etag(0, bucket.metageneration),
  }));
}

export function defaultObjectAclResources(bucket: BucketRecord) {
  return objectEntries(bucket.predefinedDefaultObjectAcl ?? DEFAULT_ACL, bucket.projectNumber).map((entry) => ({
    kind: 'storage#objectAccessControl',
    ...entry,
    etag: etag(0, bucket.metageneration),
  }));
}
