/**
 * The shapes of the v2 messages as `@grpc/proto-loader` hands them to the emulator with
 * the options in `proto.ts`: camelCase fields, enums by name, int64 as numbers, bytes as
 * Buffers, absent fields undefined, and a virtual field naming the member set in a oneof.
 * Only the fields the emulator reads or writes are listed.
 */

export interface Timestamp {
  seconds?: number;
  nanos?: number;
}

export interface Duration {
  seconds?: number;
  nanos?: number;
}

export type QueueState = 'STATE_UNSPECIFIED' | 'RUNNING' | 'PAUSED' | 'DISABLED';
export type TaskView = 'VIEW_UNSPECIFIED' | 'BASIC' | 'FULL';
export type HttpMethod = 'HTTP_METHOD_UNSPECIFIED' | 'POST' | 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS';

export interface RateLimitsMessage {
  maxDispatchesPerSecond?: number;
  maxBurstSize?: number;
  maxConcurrentDispatches?: number;
}

export interface RetryConfigMessage {
  maxAttempts?: number;
  maxRetryDuration?: Duration;
  minBackoff?: Duration;
  maxBackoff?: Duration;
  maxDoublings?: number;
}

export interface AppEngineRoutingMessage {
  service?: string;
  version?: string;
  instance?: string;
  host?: string;
}

export interface QueueMessage {
  name?: string;
  appEngineRoutingOverride?: AppEngineRoutingMessage;
  rateLimits?: RateLimitsMessage;
  retryConfig?: RetryConfigMessage;
  state?: QueueState;
  purgeTime?: Timestamp;
  stackdriverLoggingConfig?: { samplingRatio?: number };
}

export interface OidcTokenMessage {
  serviceAccountEmail?: string;
  audience?: string;
}

export interface OAuthTokenMessage {
  serviceAccountEmail?: string;
  scope?: string;
}

export interface HttpRequestMessage {
  url?: string;
  httpMethod?: HttpMethod;
  headers?: Record<string, string>;
  body?: Buffer;
  oauthToken?: OAuthTokenMessage;
  oidcToken?: OidcTokenMessage;
  authorizationHeader?: 'oauthToken' | 'oidcToken';
}

export interface StatusMessage {
  code: number;
  message: string;
}

export interface AttemptMessage {
  scheduleTime?: Timestamp;
  dispatchTime?: Timestamp;
  responseTime?: Timestamp;
  responseStatus?: StatusMessage;
}

export interface TaskMessage {
  name?: string;
  appEngineHttpRequest?: unknown;
  httpRequest?: HttpRequestMessage;
  messageType?: 'appEngineHttpRequest' | 'httpRequest';
  scheduleTime?: Timestamp;
  createTime?: Timestamp;
  dispatchDeadline?: Duration;
  dispatchCount?: number;
  responseCount?: number;
  firstAttempt?: AttemptMessage;
  lastAttempt?: AttemptMessage;
  view?: TaskView;
}

export interface FieldMask {
  paths?: string[];
}

export interface IamPolicyMessage {
  version?: number;
  bindings?: unknown[];
  auditConfigs?: unknown[];
  etag?: Buffer;
}

export const toTimestamp = (ms: number): Timestamp => {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
};

export const toDuration = toTimestamp as (ms: number) => Duration;

/** Milliseconds in a Timestamp or Duration; undefined when the field was not sent. */
export function toMillis(value: Timestamp | Duration | undefined): number | undefined {
  if (!value) return undefined;
  return (value.seconds ?? 0) * 1000 + (value.nanos ?? 0) / 1e6;
}
