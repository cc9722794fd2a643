import { validateHeaderName, validateHeaderValue } from 'node:http';
import { invalidArgument, unimplemented } from './errors';
import type { TaskName } from './names';
import type { AttemptMessage, HttpMethod, HttpRequestMessage, StatusMessage, TaskMessage, TaskView } from './wire';
import { toDuration, toMillis, toTimestamp } from './wire';

/** Where and how a task is sent: the task's HttpRequest with its defaults filled in. */
export interface HttpTarget {
  url: string;
  method: Exclude<HttpMethod, 'HTTP_METHOD_UNSPECIFIED'>;
  headers: Record<string, string>;
  body?: Buffer;
  oidcToken?: { serviceAccountEmail: string; audience?: string };
  oauthToken?: { serviceAccountEmail: string; scope?: string };
}

export interface AttemptRecord {
  scheduleTimeMs: number;
  dispatchTimeMs: number;
  responseTimeMs?: number;
  responseStatus?: StatusMessage;
}

/** A task held by a queue, with the output-only bookkeeping the service reports. */
export interface TaskRecord {
  name: TaskName;
  target: HttpTarget;
  dispatchDeadlineMs: number;
  createTimeMs: number;
  scheduleTimeMs: number;
  /** Attempts dispatched, including one still waiting for its response. */
  dispatchCount: number;
  /** Attempts that got an HTTP response. */
  responseCount: number;
  /** Responses other than 5xx: the X-CloudTasks-TaskExecutionCount header. */
  executionCount: number;
  previousResponseCode?: number;
  firstAttemptDispatchMs?: number;
  lastAttempt?: AttemptRecord;
  running: boolean;
  /** Bumped whenever the task is (re)scheduled, so stale schedule entries can be told apart. */
  scheduleStamp: number;
}

const defaultDispatchDeadlineMs = 10 * 60_000;
const maxDispatchDeadlineMs = 30 * 60_000;
const maxTaskBytes = 1024 * 1024;
const maxHeaderBytes = 80 * 1024;
const maxUrlLength = 2083;
const methodsWithBody = new Set(['POST', 'PUT', 'PATCH']);

/** Validates the HttpRequest of a CreateTask call and fills in its defaults. */
export function httpTargetFrom(task: TaskMessage): HttpTarget {
  if (task.messageType === 'appEngineHttpRequest') {
    throw unimplemented(
      'App Engine tasks (appEngineHttpRequest) are not supported by the Cloud Tasks emulator; use an HTTP target (httpRequest).',
    );
  }
  const request: HttpRequestMessage | undefined = task.httpRequest;
  if (!request) throw invalidArgument('Task.httpRequest is required');
  const url = request.url ?? '';
  if (!/^https?:\/\//i.test(url) || !URL.canParse(url)) {
    throw invalidArgument(
      `HttpRequest.url must be an absolute URL beginning with "http://" or "https://" (got "${url}")`,
    );
  }
  if (url.length > maxUrlLength) throw invalidArgument(`HttpRequest.url is longer than ${maxUrlLength} characters`);
  const method = !request.httpMethod || request.httpMethod === 'HTTP_METHOD_UNSPECIFIED' ? 'POST' : request.httpMethod;
  const body = request.body && request.body.length > 0 ? request.body : undefined;
  if (body && !methodsWithBody.has(method))
    throw invalidArgument(`HttpRequest.body is allowed only with POST, PUT or PATCH (not ${method})`);
  const headers = { ...request.headers };
  for (const [name, value] of Object.entries(headers)) {
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      throw invalidArgument(`HttpRequest.headers has a header that cannot be sent over HTTP: "${name}"`);
    }
  }
  const headerBytes = Object.entries(headers).reduce((sum, [k, v]) => sum + k.length + v.length, 0);
  if (headerBytes > maxHeaderBytes)
    throw invalidArgument(`HttpRequest.headers must be smaller than ${maxHeaderBytes / 1024}KB`);
  if ((body?.length ?? 0) + headerBytes + url.length > maxTaskBytes)
    throw invalidArgument(`Task size exceeds the maximum of ${maxTaskBytes} bytes`);
  const target: HttpTarget = { url, method, headers, ...(body && { body }) };
  if (request.authorizationHeader === 'oidcToken') {
    const email = request.oidcToken?.serviceAccountEmail;
    if (!email) throw invalidArgument('HttpRequest.oidcToken.serviceAccountEmail is required');
    target.oidcToken = {
      serviceAccountEmail: email,
      ...(request.oidcToken?.audience && { audience: request.oidcToken.audience }),
    };
  } else if (request.authorizationHeader === 'oauthToken') {
    const email = request.oauthToken?.serviceAccountEmail;
    if (!email) throw invalidArgument('HttpRequest.oauthToken.serviceAccountEmail is required');
    target.oauthToken = {
      serviceAccountEmail: email,
      ...(request.oauthToken?.scope && { scope: request.oauthToken.scope }),
    };
  }
  return target;
}

/**
 * The dispatch deadline (default 10 minutes, at most 30). The service also refuses less
 * than 15 seconds; the emulator accepts any positive deadline so tests can time out fast.
 */
export function dispatchDeadlineFrom(task: TaskMessage): number {
  const deadline = toMillis(task.dispatchDeadline);
  if (deadline === undefined || deadline === 0) return defaultDispatchDeadlineMs;
  if (deadline < 0 || deadline > maxDispatchDeadlineMs) {
    throw invalidArgument(
      `Task.dispatchDeadline must be in (0s, ${maxDispatchDeadlineMs / 1000}s] (got ${deadline / 1000}s)`,
    );
  }
  return deadline;
}

function httpRequestMessage(target: HttpTarget, view: TaskView): HttpRequestMessage {
  const message: HttpRequestMessage = { url: target.url, httpMethod: target.method, headers: { ...target.headers } };
  // BASIC leaves out the body, which can be large or sensitive.
  if (view === 'FULL' && target.body) message.body = target.body;
  if (target.oidcToken) message.oidcToken = { ...target.oidcToken };
  if (target.oauthToken) message.oauthToken = { ...target.oauthToken };
  return message;
}

function attemptMessage(attempt: AttemptRecord): AttemptMessage {
  return {
    scheduleTime: toTimestamp(attempt.scheduleTimeMs),
    dispatchTime: toTimestamp(attempt.dispatchTimeMs),
    ...(attempt.responseTimeMs !== undefined && { responseTime: toTimestamp(attempt.responseTimeMs) }),
    ...(attempt.responseStatus && { responseStatus: attempt.responseStatus }),
  };
}

export function taskToMessage(task: TaskRecord, requestedView: TaskView | undefined): TaskMessage {
  const view: TaskView = requestedView === 'FULL' ? 'FULL' : 'BASIC';
  return {
    name: task.name.path,
    httpRequest: httpRequestMessage(task.target, view),
    scheduleTime: toTimestamp(task.scheduleTimeMs),
    createTime: toTimestamp(task.createTimeMs),
    dispatchDeadline: toDuration(task.dispatchDeadlineMs),
    dispatchCount: task.dispatchCount,
    responseCount: task.responseCount,
    // The service keeps only the dispatch time of the first attempt.
    ...(task.firstAttemptDispatchMs !== undefined && {
      firstAttempt: { dispatchTime: toTimestamp(task.firstAttemptDispatchMs) },
    }),
    ...(task.lastAttempt && { lastAttempt: attemptMessage(task.lastAttempt) }),
    view,
  };
}

/** Records the start of an attempt the way the service counts it; returns the attempt. */
export function beginAttempt(task: TaskRecord, nowMs: number): AttemptRecord {
  const attempt: AttemptRecord = { scheduleTimeMs: task.scheduleTimeMs, dispatchTimeMs: nowMs };
  task.dispatchCount += 1;
  task.firstAttemptDispatchMs ??= nowMs;
  task.lastAttempt = attempt;
  task.running = true;
  return attempt;
}

/** Records how an attempt ended; true when the target acknowledged the task (2xx). */
export function endAttempt(
  task: TaskRecord,
  attempt: AttemptRecord,
  responseTimeMs: number,
  httpStatus: number | undefined,
  status: StatusMessage,
): boolean {
  task.running = false;
  attempt.responseTimeMs = responseTimeMs;
  attempt.responseStatus = status;
  if (httpStatus === undefined) return false;
  task.responseCount += 1;
  // The handler-facing execution count leaves out 5xx answers, as the service documents.
  if (httpStatus < 500) task.executionCount += 1;
  task.previousResponseCode = httpStatus;
  return httpStatus >= 200 && httpStatus < 300;
}
