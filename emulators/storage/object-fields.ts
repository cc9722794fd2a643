import { invalid } from './errors';
import { WRITABLE_OBJECT_FIELDS, type WritableObjectFields } from './model';

type Json = Record<string, unknown>;

/** The caller-settable fields of an object resource sent on insert, copy or compose; the rest is ignored. */
export function pickWritableFields(resource: Json | undefined): WritableObjectFields {
  const fields: WritableObjectFields = {};
  if (!resource) return fields;
  for (const key of WRITABLE_OBJECT_FIELDS) {
    const value = resource[key];
    if (value === undefined || value === null) continue;
    assign(fields, key, value);
  }
  return fields;
}

/**
 * PATCH semantics of the service: a field set to null is cleared; `metadata` merges key by key
 * (a key set to null is removed, `metadata: null` removes all).
 */
export function applyPatch(current: WritableObjectFields, patch: Json): WritableObjectFields {
  const next: WritableObjectFields = { ...current };
  for (const key of WRITABLE_OBJECT_FIELDS) {
    if (!(key in patch)) continue;
    const value = patch[key];
    if (value === null) {
      delete next[key];
    } else if (key === 'metadata') {
      next.metadata = mergeUserMetadata(current.metadata, value);
      if (Object.keys(next.metadata).length === 0) delete next.metadata;
    } else if (value !== undefined) {
      assign(next, key, value);
    }
  }
  return next;
}

/** Copy and rewrite: the source's fields, overridden by any the request body gives. */
export function overrideFields(source: WritableObjectFields, resource: Json | undefined): WritableObjectFields {
  const overrides = pickWritableFields(resource);
  return { ...source, ...overrides };
}

export function copyWritableFields(from: WritableObjectFields): WritableObjectFields {
  const fields: WritableObjectFields = {};
  for (const key of WRITABLE_OBJECT_FIELDS) {
    if (from[key] !== undefined) assign(fields, key, from[key]);
  }
  if (fields.metadata) fields.metadata = { ...fields.metadata };
  if (from.predefinedAcl !== undefined) fields.predefinedAcl = from.predefinedAcl;
  return fields;
}

function assign(fields: WritableObjectFields, key: (typeof WRITABLE_OBJECT_FIELDS)[number], value: unknown): void {
  switch (key) {
    case 'temporaryHold':
    case 'eventBasedHold':
      if (typeof value !== 'boolean') throw invalid(`Invalid value for ${key}: ${String(value)}`);
      fields[key] = value;
      return;
    case 'metadata':
      fields.metadata = mergeUserMetadata(undefined, value);
      return;
    case 'customTime':
      if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
        throw invalid(`Invalid value for customTime: ${String(value)}`);
      fields.customTime = new Date(value).toISOString();
      return;
    default:
      if (typeof value !== 'string') throw invalid(`Invalid value for ${key}: ${String(value)}`);
      fields[key] = value;
  }
}

/** The service's limit on an object's custom metadata: keys and values together, in bytes. */
export const MAX_CUSTOM_METADATA_BYTES = 8 * 1024;

function mergeUserMetadata(current: Record<string, string> | undefined, patch: unknown): Record<string, string> {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw invalid('Invalid value for metadata');
  const merged: Record<string, string> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else if (value !== undefined) merged[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  const size = Object.entries(merged).reduce(
    (sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value),
    0,
  );
  if (size > MAX_CUSTOM_METADATA_BYTES) {
    throw invalid(
      `The custom metadata of an object is limited to ${MAX_CUSTOM_METADATA_BYTES} bytes (keys and values together); this request has ${size}.`,
    );
  }
  return merged;
}
