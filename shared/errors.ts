/** Typed errors callers can branch on by class or by `code`, never by message text. */

export type SpineErrorCode =
  | 'INVALID_ID'
  | 'INVALID_ARGUMENT'
  | 'UNSERIALIZABLE_CONTENT'
  | 'CONTENT_TOO_LARGE'
  | 'CORRUPT_DATA'
  | 'INVALID_EVENT'
  | 'NETWORK_NOT_FOUND'
  | 'SNAPSHOT_NOT_FOUND'
  | 'STORAGE_CLOSED'
  | 'CONFLICT'
  | 'UNAVAILABLE'
  | 'NOT_FOUND'
  | 'PUBLISH_FAILED'
  | 'TIMEOUT'
  | 'STILL_APPLYING'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'LIMIT_EXCEEDED';

export class SpineError extends Error {
  readonly code: SpineErrorCode;

  constructor(code: SpineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * Codes of errors no retry can fix: the input itself (an event, a request, stored data read back)
 * is wrong. The one rule of the functions: materialize and persist file such an event as a dead
 * letter and acknowledge it, the snapshot function answers 400; anything else is transient and
 * tried again (redelivery, a later flush, a 500 the caller retries).
 */
export const PERMANENT_ERROR_CODES: ReadonlySet<SpineErrorCode> = new Set<SpineErrorCode>([
  'INVALID_ID',
  'INVALID_ARGUMENT',
  'UNSERIALIZABLE_CONTENT',
  'CONTENT_TOO_LARGE',
  'CORRUPT_DATA',
  'INVALID_EVENT',
]);

/** True for a `SpineError` whose code is in `PERMANENT_ERROR_CODES`; false for anything else, untyped errors included. */
export function isPermanent(error: unknown): error is SpineError {
  return error instanceof SpineError && PERMANENT_ERROR_CODES.has(error.code);
}

export type IdKind = 'network' | 'group' | 'contact' | 'snapshot' | 'writer' | 'path';

export class InvalidIdError extends SpineError {
  constructor(
    readonly kind: IdKind,
    readonly id: unknown,
    readonly reason: string,
  ) {
    super('INVALID_ID', `invalid ${kind} id ${describeId(id)}: ${reason}`);
  }
}

export class InvalidArgumentError extends SpineError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

export class UnserializableContentError extends SpineError {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super('UNSERIALIZABLE_CONTENT', `cannot serialize value at ${path}: ${reason}`);
  }
}

export class ContentTooLargeError extends SpineError {
  constructor(
    readonly size: number,
    readonly limit: number,
    what = 'content',
  ) {
    super('CONTENT_TOO_LARGE', `${what} is ${size} bytes encoded, over the limit of ${limit} bytes`);
  }
}

export class CorruptDataError extends SpineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CORRUPT_DATA', message, options);
  }
}

export class InvalidEventError extends SpineError {
  constructor(
    message: string,
    readonly issues: string[] = [],
  ) {
    super('INVALID_EVENT', issues.length ? `${message}: ${issues.join('; ')}` : message);
  }
}

export class NetworkNotFoundError extends SpineError {
  constructor(readonly networkId: string) {
    super('NETWORK_NOT_FOUND', `network ${describeId(networkId)} does not exist`);
  }
}

export class SnapshotNotFoundError extends SpineError {
  constructor(
    readonly networkId: string,
    readonly snapshotId: string,
  ) {
    super(
      'SNAPSHOT_NOT_FOUND',
      `snapshot ${describeId(snapshotId)} of network ${describeId(networkId)} does not exist`,
    );
  }
}

export class StorageClosedError extends SpineError {
  constructor(what: string) {
    super('STORAGE_CLOSED', `${what} was called after close()`);
  }
}

/** Pub/Sub did not accept an event; `status` is the transport's gRPC status code. */
export class PublishError extends SpineError {
  constructor(
    readonly eventType: string,
    readonly path: string,
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      'PUBLISH_FAILED',
      `publishing ${eventType} for ${path} failed${status === undefined ? '' : ` (status ${status})`}: ${(options?.cause as Error | undefined)?.message ?? 'unknown error'}`,
      options,
    );
  }
}

export class TimeoutError extends SpineError {
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

/**
 * A snapshot restore that the mesh accepted and is still applying when the wait for it ended
 * (a backlog of earlier events ahead of it): not a failure, it completes on its own; `applied`
 * resolves once it is materialized (and rejects if the client closes first).
 */
export class RestoreStillApplyingError extends SpineError {
  constructor(
    readonly networkId: string,
    readonly snapshotId: string,
    readonly waitedMs: number,
    readonly applied: Promise<void>,
  ) {
    super(
      'STILL_APPLYING',
      `the restore of network ${JSON.stringify(networkId)} from snapshot ${JSON.stringify(snapshotId)} is still being applied after ${waitedMs} ms; it was accepted and completes on its own`,
    );
  }
}

/** A gateway refused the request: no API key, an unknown one, or a revoked one (HTTP 401). */
export class AuthenticationError extends SpineError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
  }
}

/** A gateway refused the request: the API key is valid but not scoped for it (HTTP 403). */
export class PermissionDeniedError extends SpineError {
  constructor(message: string) {
    super('PERMISSION_DENIED', message);
  }
}

/** A gateway refused to hold more for the caller (subscriptions per socket, per key, in total): `limit` is the bound passed. */
export class LimitExceededError extends SpineError {
  constructor(
    message: string,
    readonly limit: number,
  ) {
    super('LIMIT_EXCEEDED', message);
  }
}

interface StorageFailureDetails {
  key: string;
  status: number | string | undefined;
  attempts: number;
  cause?: unknown;
}

/** A storage request that failed within the retry limit: `status` is the last status or errno code, `key` the object or record. */
abstract class StorageFailureError extends SpineError {
  readonly status: number | string | undefined;
  readonly key: string;
  readonly attempts: number;

  protected constructor(code: SpineErrorCode, message: string, details: StorageFailureDetails) {
    super(code, message, { cause: details.cause });
    this.key = details.key;
    this.status = details.status;
    this.attempts = details.attempts;
  }
}

/**
 * A storage write that other writers kept from succeeding within the retry limit (412
 * precondition failed, a transaction aborted again and again); trying later may work.
 */
export class StorageConflictError extends StorageFailureError {
  constructor(message: string, details: StorageFailureDetails) {
    super('CONFLICT', message, details);
  }
}

/**
 * A storage request the service refused or could not answer within the retry limit: rate limited
 * (429), unavailable (408, 5xx) or a connection that failed; nothing was in conflict, and trying
 * later may work.
 */
export class StorageUnavailableError extends StorageFailureError {
  constructor(message: string, details: StorageFailureDetails) {
    super('UNAVAILABLE', message, details);
  }
}

/**
 * Quotes an id for a message, escaping control characters and shortening long ones.
 * @internal How the project's messages show ids.
 */
export function describeId(id: unknown): string {
  if (typeof id !== 'string') return `(${id === null ? 'null' : typeof id})`;
  const shown = id.length > 80 ? `${id.slice(0, 60)}…(${id.length} chars)` : id;
  return JSON.stringify(shown);
}
