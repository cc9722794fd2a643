import http from 'node:http';
import https from 'node:https';
import { status } from '@grpc/grpc-js';
import { unsignedIdToken } from './oidc';
import type { HttpTarget } from './task';
import type { StatusMessage } from './wire';

/** What the service tells the handler about the attempt, sent as X-CloudTasks-* headers. */
export interface AttemptInfo {
  queueId: string;
  taskId: string;
  /** Attempts before this one. */
  retryCount: number;
  /** Earlier responses other than 5xx. */
  executionCount: number;
  scheduleTimeMs: number;
  previousResponseCode?: number;
}

export type AttemptOutcome =
  | { kind: 'response'; httpStatus: number; at: number }
  | { kind: 'timeout'; at: number }
  | { kind: 'unreachable'; message: string; at: number }
  /** The emulator stopped or the queue went away mid-request. */
  | { kind: 'cancelled'; at: number };

export const userAgent = 'Google-Cloud-Tasks';

/** Set by the service whatever the task says (HttpRequest.headers documentation). */
const replacedHeaders = new Set(['host', 'content-length', 'user-agent', 'connection', 'transfer-encoding']);
const reservedPrefixes = ['x-google-', 'x-appengine-', 'x-cloudtasks-'];

export function requestHeaders(target: HttpTarget, info: AttemptInfo, nowMs = Date.now()): Record<string, string> {
  const headers: Record<string, string> = {};
  const hasAuthToken = Boolean(target.oidcToken || target.oauthToken);
  for (const [name, value] of Object.entries(target.headers)) {
    const lower = name.toLowerCase();
    if (replacedHeaders.has(lower) || reservedPrefixes.some((p) => lower.startsWith(p))) continue;
    // A token mode overrides every Authorization header the task carries.
    if (hasAuthToken && lower === 'authorization') continue;
    headers[name] = value;
  }
  headers['User-Agent'] = userAgent;
  headers['X-CloudTasks-QueueName'] = info.queueId;
  headers['X-CloudTasks-TaskName'] = info.taskId;
  headers['X-CloudTasks-TaskRetryCount'] = String(info.retryCount);
  headers['X-CloudTasks-TaskExecutionCount'] = String(info.executionCount);
  headers['X-CloudTasks-TaskETA'] = (info.scheduleTimeMs / 1000).toFixed(6);
  if (info.previousResponseCode !== undefined)
    headers['X-CloudTasks-TaskPreviousResponse'] = String(info.previousResponseCode);
  if (target.oidcToken) {
    // The audience defaults to the target URL, as the service documents.
    const audience = target.oidcToken.audience ?? target.url;
    headers['Authorization'] = `Bearer ${unsignedIdToken(audience, target.oidcToken.serviceAccountEmail, nowMs)}`;
  } else if (target.oauthToken) {
    headers['Authorization'] = `Bearer emulator-oauth-access-token-for-${target.oauthToken.serviceAccountEmail}`;
  }
  if (target.body) headers['Content-Length'] = String(target.body.length);
  return headers;
}

/** The google.rpc.Status the service records for an HTTP answer (the mapping in google/rpc/code.proto). */
export function statusForHttp(httpStatus: number): StatusMessage {
  const message = `${httpStatus} ${http.STATUS_CODES[httpStatus] ?? ''}`.trim();
  if (httpStatus >= 200 && httpStatus < 300) return { code: status.OK, message };
  const known: Record<number, status> = {
    400: status.INVALID_ARGUMENT,
    401: status.UNAUTHENTICATED,
    403: status.PERMISSION_DENIED,
    404: status.NOT_FOUND,
    409: status.ABORTED,
    429: status.RESOURCE_EXHAUSTED,
    499: status.CANCELLED,
    500: status.INTERNAL,
    501: status.UNIMPLEMENTED,
    503: status.UNAVAILABLE,
    504: status.DEADLINE_EXCEEDED,
  };
  const fallback =
    httpStatus >= 500 ? status.INTERNAL : httpStatus >= 400 ? status.FAILED_PRECONDITION : status.UNKNOWN;
  return { code: known[httpStatus] ?? fallback, message };
}

export function statusForOutcome(outcome: Exclude<AttemptOutcome, { kind: 'cancelled' }>): StatusMessage {
  switch (outcome.kind) {
    case 'response':
      return statusForHttp(outcome.httpStatus);
    case 'timeout':
      return { code: status.DEADLINE_EXCEEDED, message: 'The request to the target exceeded the dispatch deadline.' };
    case 'unreachable':
      return { code: status.UNAVAILABLE, message: outcome.message };
  }
}

/**
 * Sends task attempts as real HTTP requests over keep-alive connections it owns, so
 * `close()` leaves no sockets behind. Redirects are not followed: a 3xx is a failure.
 */
export class TargetClient {
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent = new https.Agent({ keepAlive: true });

  /**
   * Resolves (never rejects) once the target has answered with a status line, the
   * deadline has passed (the request is aborted), or `cancel` fires.
   */
  send(
    target: HttpTarget,
    headers: Record<string, string>,
    deadlineMs: number,
    cancel: AbortSignal,
  ): Promise<AttemptOutcome> {
    return new Promise((resolve) => {
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(), deadlineMs);
      let settled = false;
      const settle = (outcome: AttemptOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      const onResponse = (response: http.IncomingMessage) => {
        // Drain the body so the connection goes back to the pool; its errors no longer matter.
        response.on('error', () => undefined);
        response.resume();
        settle({ kind: 'response', httpStatus: response.statusCode ?? 0, at: Date.now() });
      };
      let request: http.ClientRequest;
      try {
        request = this.open(target, headers, AbortSignal.any([deadline.signal, cancel]), onResponse);
      } catch (error) {
        // Node refuses some requests synchronously (e.g. a header it cannot send).
        return settle({
          kind: 'unreachable',
          message: `The request could not be sent: ${String(error)}`,
          at: Date.now(),
        });
      }
      request.on('error', (error) => {
        const at = Date.now();
        if (deadline.signal.aborted) settle({ kind: 'timeout', at });
        else if (cancel.aborted) settle({ kind: 'cancelled', at });
        else settle({ kind: 'unreachable', message: `The target could not be reached: ${error.message}`, at });
      });
      request.end(target.body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private open(
    target: HttpTarget,
    headers: Record<string, string>,
    signal: AbortSignal,
    onResponse: (response: http.IncomingMessage) => void,
  ): http.ClientRequest {
    const url = new URL(target.url);
    if (url.protocol === 'https:')
      return https.request(url, { method: target.method, headers, signal, agent: this.httpsAgent }, onResponse);
    return http.request(url, { method: target.method, headers, signal, agent: this.httpAgent }, onResponse);
  }
}
