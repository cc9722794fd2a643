/**
 * The gateway's wire protocol, shared by the server (`gateway/`) and `RemoteStorage`:
 * `POST /v1/{method}` with the body `encode({ args })` (the codec, so Maps, Sets and Dates
 * survive) answers `encode({ result })`, or an error `{ error: { code, message, details } }`
 * with a 4xx/5xx status; `GET /v1/subscribe` upgrades to a WebSocket carrying codec-encoded
 * `ClientMessage`s and `ServerMessage`s.
 */
import {
  AuthenticationError,
  ContentTooLargeError,
  CorruptDataError,
  InvalidArgumentError,
  InvalidEventError,
  InvalidIdError,
  LimitExceededError,
  NetworkNotFoundError,
  PermissionDeniedError,
  PublishError,
  SnapshotNotFoundError,
  SpineError,
  StorageClosedError,
  StorageConflictError,
  StorageUnavailableError,
  TimeoutError,
  UnserializableContentError,
  type IdKind,
  type SpineErrorCode,
} from '../errors';
import type { GroupChange, GroupState } from '../model';

export const API_PREFIX = '/v1/';
export const SUBSCRIBE_PATH = '/v1/subscribe';
export const HEALTH_PATH = '/healthz';

/** What a method needs of the caller's key, and where its network id is among the arguments. */
export type Access = 'read' | 'write';

export interface MethodSpec {
  access: Access;
  /** Arguments the method takes at least and at most. */
  minArgs: number;
  maxArgs: number;
  /** True when the first argument is the network id the key must be scoped to. */
  scoped: boolean;
}

/**
 * Every `NetworkStorage` method the gateway serves. `subscribe` has the WebSocket; `sync`,
 * `initialize` and `close` run in the client (sync asks `checkAccess` for every network first,
 * then copies the remote storage it is given through `saveNetworkState`). `flush` waits until
 * writes made so far are readable.
 */
export const METHODS = {
  saveContactContent: { access: 'write', minArgs: 4, maxArgs: 5, scoped: true },
  loadContactContent: { access: 'read', minArgs: 3, maxArgs: 3, scoped: true },
  saveGroupState: { access: 'write', minArgs: 3, maxArgs: 3, scoped: true },
  loadGroupState: { access: 'read', minArgs: 2, maxArgs: 2, scoped: true },
  deleteGroup: { access: 'write', minArgs: 2, maxArgs: 2, scoped: true },
  saveNetworkState: { access: 'write', minArgs: 2, maxArgs: 2, scoped: true },
  loadNetworkState: { access: 'read', minArgs: 1, maxArgs: 1, scoped: true },
  listNetworks: { access: 'read', minArgs: 0, maxArgs: 0, scoped: false },
  deleteNetwork: { access: 'write', minArgs: 1, maxArgs: 1, scoped: true },
  exists: { access: 'read', minArgs: 1, maxArgs: 1, scoped: true },
  queryGroups: { access: 'read', minArgs: 2, maxArgs: 2, scoped: true },
  saveSnapshot: { access: 'write', minArgs: 1, maxArgs: 2, scoped: true },
  loadSnapshot: { access: 'read', minArgs: 2, maxArgs: 2, scoped: true },
  listSnapshots: { access: 'read', minArgs: 1, maxArgs: 1, scoped: true },
  deleteSnapshot: { access: 'write', minArgs: 2, maxArgs: 2, scoped: true },
  /** Persists what the gateway buffered, so it needs a key that may write somewhere. */
  flush: { access: 'write', minArgs: 0, maxArgs: 0, scoped: false },
  /** `(networkIds, access)`: refuses (403, naming every refused network) unless the key may do `access` on all of them; `sync` asks before it writes anything. */
  checkAccess: { access: 'read', minArgs: 2, maxArgs: 2, scoped: false },
  /** `(networkId, groupId?, contactId?, options?)`: the network's history from the event archive (SpineStorage.history). */
  history: { access: 'read', minArgs: 1, maxArgs: 4, scoped: true },
} as const satisfies Record<string, MethodSpec>;

export type MethodName = keyof typeof METHODS;

export function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(METHODS, name);
}

/** `since` (ISO 8601): a catch-up subscription, every change after it from the event archive, then live. */
export type ClientMessage =
  { type: 'subscribe'; sub: string; path: string; since?: string } | { type: 'unsubscribe'; sub: string };

export type ServerMessage =
  | { type: 'subscribed'; sub: string }
  | { type: 'change'; sub: string; state: GroupState | null; change: GroupChange }
  | { type: 'error'; sub?: string; error: WireError };

/** WebSocket close codes of the gateway (4000–4999 are the application's). */
export const CLOSE_CODES = {
  /** The socket's send buffer passed its bound: the client reads too slowly; it reconnects and resumes. */
  slowConsumer: 4008,
  /** The key was revoked while the socket was open. */
  unauthenticated: 4401,
  /** The gateway is stopping; the client reconnects to the next one. */
  goingAway: 1001,
} as const;

/** Errors of the gateway itself, besides the storage's typed errors. */
export type GatewayErrorCode =
  | 'MALFORMED_REQUEST'
  | 'UNKNOWN_METHOD'
  | 'RATE_LIMITED'
  | 'BODY_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'METHOD_NOT_ALLOWED'
  | 'INTERNAL';

export interface WireError {
  code: SpineErrorCode | GatewayErrorCode;
  message: string;
  /** The typed error's fields, so the client rebuilds the same class with them. */
  details?: Record<string, unknown>;
}

const STATUS_BY_CODE: Record<SpineErrorCode, number> = {
  INVALID_ID: 400,
  INVALID_ARGUMENT: 400,
  UNSERIALIZABLE_CONTENT: 400,
  CONTENT_TOO_LARGE: 413,
  CORRUPT_DATA: 500,
  INVALID_EVENT: 400,
  NETWORK_NOT_FOUND: 404,
  SNAPSHOT_NOT_FOUND: 404,
  STORAGE_CLOSED: 503,
  CONFLICT: 409,
  UNAVAILABLE: 503,
  NOT_FOUND: 404,
  PUBLISH_FAILED: 502,
  TIMEOUT: 504,
  // A restore accepted and still being applied when the wait ended; over the wire, a timeout that says so.
  STILL_APPLYING: 504,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  LIMIT_EXCEEDED: 429,
};

/** The HTTP status and wire form of an error a storage call threw; unknown errors are 500 without their text. */
export function errorToWire(error: unknown): { status: number; error: WireError } {
  if (!(error instanceof SpineError)) return { status: 500, error: { code: 'INTERNAL', message: 'internal error' } };
  const details: Record<string, unknown> = {};
  for (const field of [
    'kind',
    'id',
    'reason',
    'path',
    'size',
    'limit',
    'networkId',
    'snapshotId',
    'key',
    'status',
    'attempts',
    'issues',
    'eventType',
  ] as const) {
    const value = (error as unknown as Record<string, unknown>)[field];
    if (value !== undefined && typeof value !== 'function') details[field] = value;
  }
  return {
    status: STATUS_BY_CODE[error.code] ?? 500,
    error: { code: error.code, message: error.message, ...(Object.keys(details).length ? { details } : {}) },
  };
}

/** The typed error a wire error stands for: the class the backends throw, with the server's message. */
export function errorFromWire(status: number, wire: WireError | undefined, what: string): Error {
  const message = wire?.message ?? `${what} failed with HTTP ${status}`;
  const d = wire?.details ?? {};
  const str = (key: string) => (typeof d[key] === 'string' ? (d[key] as string) : '');
  const num = (key: string) => (typeof d[key] === 'number' ? (d[key] as number) : 0);
  const failure = {
    key: str('key') || what,
    status: (d.status as number | string | undefined) ?? status,
    attempts: num('attempts') || 1,
  };
  let error: Error;
  switch (wire?.code) {
    case 'INVALID_ID':
      error = new InvalidIdError((str('kind') || 'path') as IdKind, d.id, str('reason'));
      break;
    case 'INVALID_ARGUMENT':
    case 'MALFORMED_REQUEST':
    case 'UNKNOWN_METHOD':
    case 'METHOD_NOT_ALLOWED':
      error = new InvalidArgumentError(message);
      break;
    case 'UNSERIALIZABLE_CONTENT':
      error = new UnserializableContentError(str('path'), str('reason'));
      break;
    case 'CONTENT_TOO_LARGE':
    case 'BODY_TOO_LARGE':
      error = new ContentTooLargeError(num('size'), num('limit'), 'request');
      break;
    case 'CORRUPT_DATA':
      error = new CorruptDataError(message);
      break;
    case 'INVALID_EVENT':
      error = new InvalidEventError(message);
      break;
    case 'NETWORK_NOT_FOUND':
      error = new NetworkNotFoundError(str('networkId'));
      break;
    case 'SNAPSHOT_NOT_FOUND':
      error = new SnapshotNotFoundError(str('networkId'), str('snapshotId'));
      break;
    case 'STORAGE_CLOSED':
      error = new StorageClosedError(what);
      break;
    case 'CONFLICT':
      error = new StorageConflictError(message, failure);
      break;
    case 'PUBLISH_FAILED':
      error = new PublishError(str('eventType'), str('path'), typeof d.status === 'number' ? d.status : undefined);
      break;
    case 'TIMEOUT':
    case 'STILL_APPLYING':
      error = new TimeoutError(message);
      break;
    case 'UNAUTHENTICATED':
      error = new AuthenticationError(message);
      break;
    case 'PERMISSION_DENIED':
      error = new PermissionDeniedError(message);
      break;
    case 'LIMIT_EXCEEDED':
      error = new LimitExceededError(message, num('limit'));
      break;
    default:
      // UNAVAILABLE, RATE_LIMITED (429), NOT_FOUND of the gateway itself, INTERNAL and anything unknown: trying later may work.
      error = new StorageUnavailableError(message, { ...failure, status });
  }
  // The server's text, which names what was refused (the rebuilt error's own message is generic when details are missing).
  error.message = message;
  return error;
}
