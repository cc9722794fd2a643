/**
 * Errors in the shape and wording of the Cloud Storage JSON API, so the official client turns
 * them into `ApiError`s with the same `code`, `message` and `errors[].reason` as in the cloud.
 * Callers branch on `code` / `reason`, never on message text.
 */

/** @internal The emulator's HTTP errors, answered as JSON; clients see the official client's errors. */
export type StorageApiErrorReason =
  | 'notModified'
  | 'invalid'
  | 'required'
  | 'parseError'
  | 'forbidden'
  | 'retentionPolicyNotMet'
  | 'notFound'
  | 'conflict'
  | 'conditionNotMet'
  | 'requestedRangeNotSatisfiable'
  | 'rateLimitExceeded'
  | 'uploadCancelled'
  | 'notImplemented'
  | 'backendError';

/** @internal The emulator's HTTP errors, answered as JSON; clients see the official client's errors. */
export interface StorageApiErrorBody {
  error: {
    code: number;
    message: string;
    errors: Array<{
      message: string;
      domain: 'global';
      reason: StorageApiErrorReason;
      location?: string;
      locationType?: string;
    }>;
  };
}

/** @internal The emulator's HTTP errors, answered as JSON; clients see the official client's errors. */
export class StorageApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StorageApiErrorReason,
    message: string,
    readonly location?: { location: string; locationType: 'header' | 'parameter' },
  ) {
    super(message);
    this.name = 'StorageApiError';
  }

  toBody(): StorageApiErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        errors: [{ message: this.message, domain: 'global', reason: this.reason, ...this.location }],
      },
    };
  }
}

export const bucketNotFound = () => new StorageApiError(404, 'notFound', 'The specified bucket does not exist.');

export const objectNotFound = (bucket: string, name: string) =>
  new StorageApiError(404, 'notFound', `No such object: ${bucket}/${name}`);

export const uploadNotFound = () => new StorageApiError(404, 'notFound', 'No such upload session.');

export const preconditionFailed = () =>
  new StorageApiError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.', {
    location: 'If-Match',
    locationType: 'header',
  });

/** Not an error for the caller: a GET whose "not match" precondition matched answers 304 without a body. */
export const notModified = () => new StorageApiError(304, 'notModified', 'Not Modified');

export const bucketAlreadyOwned = () =>
  new StorageApiError(
    409,
    'conflict',
    'Your previous request to create the named bucket succeeded and you already own it.',
  );

export const bucketNotEmpty = () =>
  new StorageApiError(409, 'conflict', 'The bucket you tried to delete is not empty.');

export const invalid = (message: string) => new StorageApiError(400, 'invalid', message);

export const required = (what: string) => new StorageApiError(400, 'required', `Required parameter: ${what}`);

export const parseError = () => new StorageApiError(400, 'parseError', 'Parse Error');

export const rangeNotSatisfiable = () =>
  new StorageApiError(416, 'requestedRangeNotSatisfiable', 'The requested range cannot be satisfied.');

export const objectRateLimited = (bucket: string, name: string) =>
  new StorageApiError(
    429,
    'rateLimitExceeded',
    `The object ${bucket}/${name} exceeded the rate limit for object mutation operations (create, update, and delete). ` +
      'Please reduce your request rate. See https://cloud.google.com/storage/docs/gcs429.',
  );

export const objectUnderHold = (bucket: string, name: string, hold: 'Temporary' | 'Event-Based') =>
  new StorageApiError(
    403,
    'forbidden',
    `Object '${bucket}/${name}' is under active ${hold} hold and cannot be deleted, overwritten or archived until hold is removed.`,
  );

export const objectUnderRetention = (bucket: string, name: string, until: string) =>
  new StorageApiError(
    403,
    'retentionPolicyNotMet',
    `Object '${bucket}/${name}' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten until ${until}`,
  );

export const uploadCancelled = () => new StorageApiError(499, 'uploadCancelled', 'Upload cancelled.');

export const hashMismatch = (kind: 'MD5' | 'CRC32C', provided: string, calculated: string) =>
  new StorageApiError(
    400,
    'invalid',
    kind === 'MD5'
      ? `Provided MD5 hash "${provided}" doesn't match calculated MD5 hash "${calculated}".`
      : `Provided CRC32C "${provided}" doesn't match calculated CRC32C "${calculated}".`,
  );

/**
 * A route the emulator does not serve. 400, not 501: every Google client retries 5xx (gcloud
 * for about a minute), and a missing feature should fail at once with its name.
 */
export const notImplemented = (method: string, path: string) =>
  new StorageApiError(
    400,
    'notImplemented',
    `The Super Spine storage emulator does not implement ${method} ${path} (the Cloud Storage service does). ` +
      'It answers 400 so that clients fail at once instead of retrying.',
  );
