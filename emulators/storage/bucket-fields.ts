import { StorageApiError, invalid } from './errors';
import type { BucketRecord } from './model';

/**
 * Bucket settings as the service keeps them: locations upper-cased with their location type,
 * int64 fields (`retentionPeriod`) as strings, a retention policy's `effectiveTime`, an
 * autoclass `toggleTime`, and empty `labels` / `cors` removed rather than kept as `{}` / `[]`.
 */

type Json = Record<string, unknown>;

/** Bucket fields the service owns; a request body cannot set them. */
const READ_ONLY_FIELDS = new Set([
  'kind',
  'id',
  'selfLink',
  'name',
  'projectNumber',
  'metageneration',
  'etag',
  'timeCreated',
  'updated',
  'locationType',
]);

/** Multi-region and predefined dual-region codes; any other location is a region. */
const MULTI_REGIONS = new Set(['US', 'EU', 'ASIA']);
const DUAL_REGIONS = new Set(['NAM4', 'EUR4', 'EUR5', 'EUR7', 'EUR8', 'ASIA1']);

export const DEFAULT_LOCATION = 'US';

/** Settings of a new bucket from its insert body. */
export function newBucketSettings(resource: Json, now: string): Json {
  const settings: Json = {};
  for (const [key, value] of Object.entries(resource)) {
    if (READ_ONLY_FIELDS.has(key) || value === undefined || value === null) continue;
    settings[key] = value;
  }
  settings.location = normalizeLocation(settings.location ?? DEFAULT_LOCATION);
  if (settings.retentionPolicy !== undefined)
    settings.retentionPolicy = newRetentionPolicy(settings.retentionPolicy, now);
  if (settings.autoclass !== undefined) settings.autoclass = autoclassSettings(settings.autoclass, undefined, now);
  rejectVersioningWithRetention(settings);
  return dropEmpty(settings);
}

/**
 * A bucket's settings after a PATCH: a field set to null is removed, `labels` merge key by key,
 * a locked retention policy can only grow, and the location cannot change.
 */
export function patchedBucketSettings(record: BucketRecord, patch: Json, now: string): Json {
  const settings: Json = { ...record.settings };
  for (const [key, value] of Object.entries(patch)) {
    if (READ_ONLY_FIELDS.has(key) || value === undefined) continue;
    if (key === 'location') {
      if (value !== null && normalizeLocation(value) !== settings.location) {
        throw invalid('The location of a bucket cannot be changed.');
      }
      continue;
    }
    if (key === 'retentionPolicy') {
      settings.retentionPolicy = patchedRetentionPolicy(record.name, settings.retentionPolicy, value, now);
      if (settings.retentionPolicy === undefined) delete settings.retentionPolicy;
      continue;
    }
    if (value === null) delete settings[key];
    else if (key === 'labels' && isPlainObject(value)) settings.labels = mergeLabels(settings.labels, value);
    else if (key === 'autoclass') settings.autoclass = autoclassSettings(value, settings.autoclass, now);
    else settings[key] = value;
  }
  rejectVersioningWithRetention(settings);
  return dropEmpty(settings);
}

/** The settings with the retention policy locked; the policy must exist. */
export function lockedRetentionSettings(record: BucketRecord): Json {
  const policy = record.settings.retentionPolicy;
  if (!isPlainObject(policy)) {
    throw new StorageApiError(400, 'invalid', `Bucket '${record.name}' has no retention policy to lock.`);
  }
  return { ...record.settings, retentionPolicy: { ...policy, isLocked: true } };
}

/** The retention period of the bucket in milliseconds, or undefined when it has none. */
export function retentionPeriodMs(record: BucketRecord): number | undefined {
  const policy = record.settings.retentionPolicy;
  if (!isPlainObject(policy)) return undefined;
  return Number(policy.retentionPeriod) * 1000;
}

/** `multi-region`, `dual-region` or `region`, as the service reports `locationType`. */
export function locationTypeOf(settings: Json): string {
  const location = typeof settings.location === 'string' ? settings.location : DEFAULT_LOCATION;
  const placement = settings.customPlacementConfig;
  if (isPlainObject(placement) && Array.isArray(placement.dataLocations) && placement.dataLocations.length > 0)
    return 'dual-region';
  if (MULTI_REGIONS.has(location)) return 'multi-region';
  if (DUAL_REGIONS.has(location)) return 'dual-region';
  return 'region';
}

function normalizeLocation(value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9-]+$/.test(value)) throw invalid(`Invalid location: ${String(value)}`);
  return value.toUpperCase();
}

/** retentionPeriod is int64 seconds: a JSON number or a decimal string, kept as a string. */
function retentionPeriodOf(policy: unknown): string {
  const period = isPlainObject(policy) ? policy.retentionPeriod : undefined;
  const text = typeof period === 'number' ? String(period) : period;
  if (typeof text !== 'string' || !/^\d+$/.test(text)) {
    throw invalid(`Invalid value for retentionPolicy.retentionPeriod: ${String(period)}`);
  }
  // The service's upper bound: 3,155,760,000 seconds (100 years).
  if (Number(text) > 3_155_760_000)
    throw invalid('The retention period must be at most 3155760000 seconds (100 years).');
  return String(Number(text));
}

function newRetentionPolicy(policy: unknown, now: string): Json {
  return { retentionPeriod: retentionPeriodOf(policy), effectiveTime: now };
}

function patchedRetentionPolicy(bucket: string, current: unknown, patch: unknown, now: string): Json | undefined {
  const locked = isPlainObject(current) && current.isLocked === true;
  if (patch === null) {
    if (locked) throw lockedPolicy(`Cannot remove a locked retention policy of bucket '${bucket}'.`);
    return undefined;
  }
  const period = retentionPeriodOf(patch);
  if (locked && Number(period) < Number(current.retentionPeriod)) {
    throw lockedPolicy(`Cannot reduce the retention period of the locked retention policy of bucket '${bucket}'.`);
  }
  return { retentionPeriod: period, effectiveTime: now, ...(locked && { isLocked: true }) };
}

const lockedPolicy = (message: string) => new StorageApiError(403, 'forbidden', message);

/** The service adds `toggleTime` (when `enabled` last changed) and a terminal storage class. */
function autoclassSettings(value: unknown, current: unknown, now: string): Json {
  if (!isPlainObject(value) || typeof value.enabled !== 'boolean')
    throw invalid('Invalid value for autoclass: enabled must be a boolean.');
  const previous = isPlainObject(current) ? current : undefined;
  const toggled = previous?.enabled !== value.enabled;
  const terminal =
    typeof value.terminalStorageClass === 'string'
      ? value.terminalStorageClass
      : (previous?.terminalStorageClass ?? 'NEARLINE');
  return {
    enabled: value.enabled,
    toggleTime: toggled || typeof previous?.toggleTime !== 'string' ? now : previous.toggleTime,
    ...(value.enabled && {
      terminalStorageClass: terminal,
      terminalStorageClassUpdateTime:
        terminal !== previous?.terminalStorageClass || typeof previous?.terminalStorageClassUpdateTime !== 'string'
          ? now
          : previous.terminalStorageClassUpdateTime,
    }),
  };
}

function rejectVersioningWithRetention(settings: Json): void {
  const versioning = settings.versioning;
  if (settings.retentionPolicy !== undefined && isPlainObject(versioning) && versioning.enabled === true) {
    throw invalid('A bucket cannot have both a retention policy and object versioning enabled.');
  }
}

/** The service omits labels and CORS rules once none is left. */
function dropEmpty(settings: Json): Json {
  if (isPlainObject(settings.labels) && Object.keys(settings.labels).length === 0) delete settings.labels;
  if (Array.isArray(settings.cors) && settings.cors.length === 0) delete settings.cors;
  return settings;
}

function mergeLabels(current: unknown, patch: Json): Json {
  const merged: Json = isPlainObject(current) ? { ...current } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

export function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
