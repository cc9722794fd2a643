/**
 * Errors in the shape and wording of the Cloud Storage JSON API, so the official client turns
 * them into `ApiError`s with the same `code`, `message` and `errors[].reason` as in the cloud.
 * Callers branch on `code` / `reason`, never on message text.
 */

export type StorageErrorReason =
  | 'notModified'
  | 'invalid'
  | 'required'
  | 'parseError'
  | 'forbidden'
  | 'notFound'
  | 'conflict'
  | 'conditionNotMet'
  | 'requestedRangeNotSatisfiable'
  | 'rateLimitExceeded'
  | 'uploadCancelled'
  | 'notImplemented'
  | 'backendError';

export interface StorageErrorBody {
  error: {
    code: number;
    message: string;
    errors: Array<{ message: string; domain: 'global'; reason: StorageErrorReason; location?: string; locationType?: string }>;
  };
}

export class StorageError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StorageErrorReason,
    message: string,
    readonly location?: { location: string; locationType: 'header' | 'parameter' },
  ) {
    super(message);
    this.name = 'StorageError';
  }

  toBody(): StorageErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        errors: [{ message: this.message, domain: 'global', reason: this.reason, ...this.location }],
      },
    };
  }
}

export const bucketNotFound = () => new StorageError(404, 'notFound', 'The specified bucket does not exist.');

export const objectNotFound = (bucket: string, name: string) =>
  new StorageError(404, 'notFound', `No such object: ${bucket}/${name}`);

export const uploadNotFound = () => new StorageError(404, 'notFound', 'No such upload session.');

export const preconditionFailed = () =>
  new StorageError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.', {
    location: 'If-Match',
    locationType: 'header',
  });

/** Not an error for the caller: a GET whose "not match" precondition matched answers 304 without a body. */
export const notModified = () => new StorageError(304, 'notModified', 'Not Modified');

export const bucketAlreadyOwned = () =>
  new StorageError(409, 'conflict', 'Your previous request to create the named bucket succeeded and you already own it.');

export const bucketNotEmpty = () => new StorageError(409, 'conflict', 'The bucket you tried to delete is not empty.');

export const invalid = (message: string) => new StorageError(400, 'invalid', message);

export const required = (what: string) => new StorageError(400, 'required', `Required parameter: ${what}`);

export const parseError = () => new StorageError(400, 'parseError', 'Parse Error');

export const rangeNotSatisfiable = () =>
  new StorageError(416, 'requestedRangeNotSatisfiable', 'The requested range cannot be satisfied.');

export const objectRateLimited = (bucket: string, name: string) =>
  new StorageError(
    429,
    'rateLimitExceeded',
    `The object ${bucket}/${name} exceeded the rate limit for object mutation operations (create, update, and delete). ` +
      'Please reduce your request rate. See https://cloud.google.com/storage/docs/gcs429.',
  );

export const objectUnderHold = (bucket: string, name: string, hold: 'Temporary' | 'Event-Based') =>
  new StorageError(
    403,
    'forbidden',
    `Object '${bucket}/${name}' is under active ${hold} hold and cannot be deleted, overwritten or archived until hold is removed.`,
  );

export const uploadCancelled = () => new StorageError(499, 'uploadCancelled', 'Upload cancelled.');

export const hashMismatch = (kind: 'MD5' | 'CRC32C', provided: string, calculated: string) =>
  new StorageError(
    400,
    'invalid',
    kind === 'MD5'
      ? `Provided MD5 hash "${provided}" doesn't match calculated MD5 hash "${calculated}".`
      : `Provided CRC32C "${provided}" doesn't match calculated CRC32C "${calculated}".`,
  );

export const notImplemented = (method: string, path: string) =>
  new StorageError(501, 'notImplemented', `The storage emulator does not implement ${method} ${path}`);
