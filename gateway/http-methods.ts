/**
 * `POST /v1/<method>`: every `NetworkStorage` method over HTTP. A request is checked completely
 * (route, key, rate, body, arguments, ids, scope) before the storage is touched, so a refused
 * request changes nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decode, encode } from '../shared/codec';
import { InvalidArgumentError, SpineError } from '../shared/errors';
import { validateContactId, validateGroupId, validateNetworkId, validateSnapshotId } from '../shared/ids';
import type { Logger } from '../shared/log';
import type { NetworkStorage } from '../shared/model';
import type { HistoryOptions, HistoryPage } from '../shared/history/history';
import {
  API_PREFIX,
  errorToWire,
  HEALTH_PATH,
  isMethodName,
  METHODS,
  SUBSCRIBE_PATH,
  type MethodName,
} from '../shared/remote/protocol';
import { checkScope, type Authenticator } from './authentication';
import { allows, writesSomewhere, type ApiKeyRecord } from './keys';
import { RequestError, type GatewayCounters } from './request-error';

/** A body this many times over the limit is not even read to the end: the connection is dropped. */
const DISCARD_FACTOR = 16;

/** An id argument that may be left out (`undefined`). */
const optional =
  (validate: (id: unknown) => string) =>
  (id: unknown): string =>
    id === undefined ? (id as unknown as string) : validate(id);

/** Ids each method takes after the network id, validated before the storage sees them. */
const ID_ARGUMENTS: Partial<Record<MethodName, Array<(id: unknown) => string>>> = {
  saveContactContent: [validateNetworkId, validateGroupId, validateContactId],
  loadContactContent: [validateNetworkId, validateGroupId, validateContactId],
  saveGroupState: [validateNetworkId, validateGroupId],
  loadGroupState: [validateNetworkId, validateGroupId],
  deleteGroup: [validateNetworkId, validateGroupId],
  loadSnapshot: [validateNetworkId, validateSnapshotId],
  deleteSnapshot: [validateNetworkId, validateSnapshotId],
  history: [validateNetworkId, optional(validateGroupId), optional(validateContactId)],
};

export interface BodyLimits {
  maxBodyBytes: number;
  bodyTimeoutMs: number;
}

/** The body, which must have arrived by `deadline` (performance.now() time), else 408; over the limit, 413. */
export async function readBody(req: IncomingMessage, deadline: number, limits: BodyLimits): Promise<string> {
  const { maxBodyBytes, bodyTimeoutMs } = limits;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBodyBytes * DISCARD_FACTOR) {
    throw new RequestError(
      413,
      'BODY_TOO_LARGE',
      `request body is ${declared} bytes, over the limit of ${maxBodyBytes}`,
      { connection: 'close' },
      { size: declared, limit: maxBodyBytes },
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const reading = (async () => {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      // Past the limit the rest is read and dropped, so the client gets its 413 instead of a reset.
      if (size <= maxBodyBytes) chunks.push(chunk);
      else if (size > maxBodyBytes * DISCARD_FACTOR) break;
    }
  })();
  // The socket is closed after a 408, which ends the reading with an error nobody waits for.
  reading.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new RequestError(
            408,
            'REQUEST_TIMEOUT',
            `the request body did not arrive within ${bodyTimeoutMs} ms (${size} bytes came)`,
            { connection: 'close' },
          ),
        ),
      Math.max(0, deadline - performance.now()),
    );
  });
  try {
    await Promise.race([reading, late]);
  } finally {
    clearTimeout(timer);
  }
  if (size > maxBodyBytes)
    throw new RequestError(
      413,
      'BODY_TOO_LARGE',
      `request body is over the limit of ${maxBodyBytes} bytes`,
      { connection: 'close' },
      { size, limit: maxBodyBytes },
    );
  return Buffer.concat(chunks).toString('utf8');
}

/** The method's arguments from a `{ "args": [...] }` body, counted and with their ids validated. */
export function parseArgs(method: MethodName, body: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = decode(body);
  } catch (error) {
    throw new RequestError(400, 'MALFORMED_REQUEST', `request body is not codec JSON: ${(error as Error).message}`);
  }
  const args = (parsed as { args?: unknown } | null)?.args;
  if (!parsed || typeof parsed !== 'object' || !Array.isArray(args))
    throw new RequestError(400, 'MALFORMED_REQUEST', 'request body must be { "args": [...] }');
  const spec = METHODS[method];
  if (args.length < spec.minArgs || args.length > spec.maxArgs) {
    const expected = spec.minArgs === spec.maxArgs ? `${spec.minArgs}` : `${spec.minArgs} to ${spec.maxArgs}`;
    throw new RequestError(400, 'MALFORMED_REQUEST', `${method} takes ${expected} arguments, not ${args.length}`);
  }
  const validators = ID_ARGUMENTS[method] ?? (spec.scoped ? [validateNetworkId] : []);
  validators.forEach((validate, index) => validate(args[index]));
  return args;
}

/** What serves `history`: SpineStorage. */
export interface HistorySource {
  history(networkId: string, groupId?: string, contactId?: string, options?: HistoryOptions): Promise<HistoryPage>;
}

/** What the gateway serves: any storage; `flush` and `history` when it has them (SpineStorage). */
export type GatewayStorage = NetworkStorage & { flush?(): Promise<void>; history?: HistorySource['history'] };

/** Runs a method for a key: its scope first, then the storage (listNetworks shows only the key's networks). */
export async function callMethod(
  storage: GatewayStorage,
  record: ApiKeyRecord,
  method: MethodName,
  args: unknown[],
): Promise<unknown> {
  const spec = METHODS[method];
  if (spec.scoped) checkScope(record, args[0] as string, spec.access);
  switch (method) {
    case 'listNetworks':
      return (await storage.listNetworks()).filter((networkId) => allows(record, networkId, 'read'));
    case 'flush':
      if (!writesSomewhere(record))
        throw new RequestError(
          403,
          'PERMISSION_DENIED',
          `key ${record.id} may not flush: it writes no network (flush persists what the gateway buffered)`,
        );
      return storage.flush ? storage.flush() : undefined;
    case 'checkAccess':
      return checkAccess(record, args[0], args[1]);
    case 'history':
      if (!storage.history)
        throw new RequestError(501, 'UNKNOWN_METHOD', 'this gateway serves no history: its storage keeps no archive');
      return storage.history(
        args[0] as string,
        args[1] as string | undefined,
        args[2] as string | undefined,
        args[3] as HistoryOptions | undefined,
      );
    default:
      return (storage[method] as (...a: unknown[]) => Promise<unknown>).apply(storage, args);
  }
}

/** Refuses unless the key may do `access` on every network named, naming all it may not. */
function checkAccess(record: ApiKeyRecord, networkIds: unknown, access: unknown): null {
  if (!Array.isArray(networkIds) || networkIds.length > 100_000)
    throw new InvalidArgumentError('checkAccess takes a list of at most 100000 network ids');
  if (access !== 'read' && access !== 'write')
    throw new InvalidArgumentError(`access must be read or write, not ${JSON.stringify(access)}`);
  const refused = networkIds
    .map((id) => validateNetworkId(id))
    .filter((networkId) => !allows(record, networkId, access));
  if (refused.length > 0) {
    const shown = refused
      .slice(0, 20)
      .map((id) => JSON.stringify(id))
      .join(', ');
    throw new RequestError(
      403,
      'PERMISSION_DENIED',
      `key ${record.id} may not ${access} network${refused.length > 1 ? 's' : ''} ${shown}${refused.length > 20 ? ` and ${refused.length - 20} more` : ''}`,
    );
  }
  return null;
}

function reply(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(body);
}

export interface MethodRoutesOptions extends BodyLimits {
  storage: GatewayStorage;
  auth: Authenticator;
  counters: GatewayCounters;
  log: Logger;
}

/** The HTTP request handler: the health route and `POST /v1/<method>`. */
export function methodRoutes(
  options: MethodRoutesOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { storage, auth, counters, log, bodyTimeoutMs } = options;
  return async (req, res) => {
    counters.requests += 1;
    const started = performance.now();
    const bodyDeadline = started + bodyTimeoutMs;
    const { pathname } = new URL(req.url ?? '/', 'http://gateway');
    let method: string | undefined;
    let keyId: string | undefined;
    try {
      if (pathname === HEALTH_PATH) return reply(res, 200, JSON.stringify({ ok: true }));
      if (!pathname.startsWith(API_PREFIX) || pathname === SUBSCRIBE_PATH)
        throw new RequestError(
          404,
          'UNKNOWN_METHOD',
          `no such route ${JSON.stringify(pathname)}: methods are POST ${API_PREFIX}<method>, subscriptions ${SUBSCRIBE_PATH} over WebSocket`,
        );
      if (req.method !== 'POST')
        throw new RequestError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed: use POST`, { allow: 'POST' });
      const record = await auth.authenticate(req);
      keyId = record.id;
      auth.limit(record);
      method = pathname.slice(API_PREFIX.length);
      if (!isMethodName(method))
        throw new RequestError(
          404,
          'UNKNOWN_METHOD',
          `unknown method ${JSON.stringify(method)}; methods: ${Object.keys(METHODS).join(', ')}`,
        );
      const args = parseArgs(method, await readBody(req, bodyDeadline, options));
      const result = await callMethod(storage, record, method, args);
      reply(res, 200, encode({ result }));
      log.debug('request', { method, keyId, status: 200, ms: Math.round(performance.now() - started) });
    } catch (error) {
      counters.refused += 1;
      if (error instanceof RequestError && error.status === 408) {
        // A client this slow gets its answer and loses the connection, so it holds nothing more.
        counters.bodyTimeouts += 1;
        log.warn('request body too slow', { method, keyId, ms: Math.round(performance.now() - started) });
        res.once('finish', () => req.socket.destroy());
        setTimeout(() => req.socket.destroy(), 1_000).unref();
        return reply(res, 408, JSON.stringify({ error: error.toWire() }), error.headers);
      }
      // Anything still unread is drained, so keep-alive connections stay usable.
      req.resume();
      if (error instanceof RequestError)
        return reply(res, error.status, JSON.stringify({ error: error.toWire() }), error.headers);
      const { status, error: wire } = errorToWire(error);
      if (!(error instanceof SpineError)) log.error('request failed', { method, keyId, error });
      else log.info('request refused', { method, keyId, status, code: wire.code });
      reply(res, status, JSON.stringify({ error: wire }));
    }
  };
}
