import { createHash } from 'node:crypto';
import { InvalidIdError, type IdKind } from './errors';

/**
 * Identifier rules, in one place. Ids are non-empty UTF-8 strings of at most 1024 bytes with no
 * control characters. Group ids may be paths (`users/@alice`): no empty segments, no `.` or `..`
 * segments, no leading or trailing `/`. Network, contact and snapshot ids are single segments.
 */
export const MAX_ID_BYTES = 1024;

// C0 and C1 control characters and DEL, plus lone surrogates (not encodable as UTF-8).
const FORBIDDEN =
  /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;

function checkCommon(kind: IdKind, id: unknown): asserts id is string {
  if (typeof id !== 'string') throw new InvalidIdError(kind, id, 'must be a string');
  if (id.length === 0) throw new InvalidIdError(kind, id, 'must not be empty');
  if (FORBIDDEN.test(id))
    throw new InvalidIdError(kind, id, 'must not contain control characters or unpaired surrogates');
  const bytes = Buffer.byteLength(id, 'utf8');
  if (bytes > MAX_ID_BYTES) throw new InvalidIdError(kind, id, `is ${bytes} bytes, over the limit of ${MAX_ID_BYTES}`);
}

function checkSegment(kind: IdKind, id: string, segment: string): void {
  if (segment === '') throw new InvalidIdError(kind, id, 'must not have empty segments or a leading or trailing "/"');
  if (segment === '.' || segment === '..') throw new InvalidIdError(kind, id, `must not have "${segment}" segments`);
}

function validateSingleSegment(kind: IdKind, id: unknown): string {
  checkCommon(kind, id);
  if (id.includes('/')) throw new InvalidIdError(kind, id, 'must not contain "/"');
  checkSegment(kind, id, id);
  return id;
}

/** Whether `id` passes `validateNetworkId`, for callers that leave the refusal to someone else. */
export function isValidNetworkId(id: unknown): id is string {
  try {
    validateNetworkId(id);
    return true;
  } catch {
    return false;
  }
}

export function validateNetworkId(id: unknown): string {
  return validateSingleSegment('network', id);
}

export function validateContactId(id: unknown): string {
  return validateSingleSegment('contact', id);
}

export function validateSnapshotId(id: unknown): string {
  return validateSingleSegment('snapshot', id);
}

export function validateWriterId(id: unknown): string {
  return validateSingleSegment('writer', id);
}

export function validateGroupId(id: unknown): string {
  checkCommon('group', id);
  for (const segment of id.split('/')) checkSegment('group', id, segment);
  return id;
}

/** A change path is `network` or `network/group-prefix`; it names what a subscription listens to. */
export interface ParsedPath {
  networkId: string;
  /** Undefined when the path names the whole network. */
  groupPrefix?: string;
}

export function parsePath(path: unknown): ParsedPath {
  if (typeof path !== 'string' || path.length === 0)
    throw new InvalidIdError('path', path, 'must be a non-empty string');
  const slash = path.indexOf('/');
  try {
    if (slash === -1) return { networkId: validateNetworkId(path) };
    return { networkId: validateNetworkId(path.slice(0, slash)), groupPrefix: validateGroupId(path.slice(slash + 1)) };
  } catch (error) {
    // Reported as a bad path (the whole string), whichever part of it was wrong.
    if (error instanceof InvalidIdError) throw new InvalidIdError('path', path, error.reason);
    throw error;
  }
}

export function changePath(networkId: string, groupId: string): string {
  return `${networkId}/${groupId}`;
}

/** True when `groupId` of `networkId` lies at or below `path`, segment-wise. */
export function pathMatches(path: ParsedPath, networkId: string, groupId: string): boolean {
  if (path.networkId !== networkId) return false;
  if (path.groupPrefix === undefined) return true;
  return groupId === path.groupPrefix || groupId.startsWith(path.groupPrefix + '/');
}

// Characters kept as they are in keys; everything else, "." and "/" included, is %XX-encoded,
// so an encoded id is one path segment that can never be "." or "..".
const KEY_SAFE = /[A-Za-z0-9_@-]/;

/**
 * Maps a valid id to a storage key segment (a file or object name part). The encoding is
 * injective, contains no "/" or ".", and stays under `maxLength` characters: longer encodings
 * keep a readable head and end in "~" plus the SHA-256 of the id ("~" is never produced otherwise).
 */
export function idToKey(id: string, maxLength = 200): string {
  let encoded = '';
  for (const char of id) {
    if (KEY_SAFE.test(char)) encoded += char;
    else
      for (const byte of Buffer.from(char, 'utf8')) encoded += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  if (encoded.length <= maxLength) return encoded;
  const digest = createHash('sha256').update(id, 'utf8').digest('hex');
  let head = encoded.slice(0, Math.max(0, maxLength - digest.length - 1));
  // Do not cut an escape in half.
  const cut = head.lastIndexOf('%');
  if (cut !== -1 && cut > head.length - 3) head = head.slice(0, cut);
  return `${head}~${digest}`;
}

/** Inverse of `idToKey` for keys that were not shortened; `undefined` for shortened keys. */
export function keyToId(key: string): string | undefined {
  if (key.includes('~')) return undefined;
  return decodeURIComponent(key);
}
