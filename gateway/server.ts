/**
 * The gateway: every `NetworkStorage` method over HTTP and `subscribe` over WebSocket, for
 * clients without Google Cloud credentials (`RemoteStorage`). Every request carries an API key
 * (`Authorization: Bearer ssk_…`) scoped to networks; requests are checked completely (key,
 * rate, method, body, ids, scope) before the storage is touched, so a refused request changes
 * nothing. The protocol is in shared/remote/protocol.ts.
 *
 * No client can starve the others: subscriptions share one storage subscription per network
 * (one Pub/Sub subscription, filtered here in memory) and are bounded per socket, per key and in
 * total; unknown keys are remembered and their lookups limited per client address before any
 * Storage read; a request body that trickles in is cut at a deadline.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { decode, encode } from '../shared/codec';
import { InvalidArgumentError, LimitExceededError, SpineError } from '../shared/errors';
import {
  parsePath,
  pathMatches,
  validateContactId,
  validateGroupId,
  validateNetworkId,
  validateSnapshotId,
  type ParsedPath,
} from '../shared/ids';
import { createLogger, type Logger } from '../shared/log';
import type { GroupChange, GroupState, NetworkStorage, Unsubscribe } from '../shared/model';
import {
  API_PREFIX,
  CLOSE_CODES,
  errorToWire,
  HEALTH_PATH,
  isMethodName,
  METHODS,
  SUBSCRIBE_PATH,
  type ClientMessage,
  type GatewayErrorCode,
  type MethodName,
  type WireError,
} from '../shared/remote/protocol';
import type { HistoryOptions, HistoryPage } from '../shared/history/history';
import { allows, hashKey, keyIdOf, writesSomewhere, type ApiKeyRecord, type ApiKeys } from './keys';
import { RateLimiter } from './rate-limiter';

export interface GatewayOptions {
  /** What the gateway serves; `flush()` is called for `POST /v1/flush` when it has one (SpineStorage). */
  storage: NetworkStorage & { flush?(): Promise<void>; history?: HistorySource['history'] };
  keys: ApiKeys;
  /** 0 (default) takes a free port. */
  port?: number;
  /** Default 127.0.0.1; 0.0.0.0 on Cloud Run. */
  host?: string;
  logger?: Logger;
  /** Largest request body (default 1 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** How long a verified key (or a refused one) is believed before its record is read again (default 5 s). */
  keyCacheMs?: number;
  /** Bytes queued for one WebSocket before it is closed as a slow consumer (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Subscriptions one WebSocket may hold (default 100). */
  maxSubscriptionsPerSocket?: number;
  /** Subscriptions all sockets of one key may hold together (default 1000). */
  maxSubscriptionsPerKey?: number;
  /** Subscriptions the gateway holds for all its sockets (default 20000); each costs memory here, not Pub/Sub. */
  maxSubscriptions?: number;
  /** Networks watched at once, each one storage (Pub/Sub) subscription shared by every socket on it (default 200). */
  maxWatchedNetworks?: number;
  /** Distinct networks one key's subscriptions may span (default 50), so one key cannot take every watch. */
  maxNetworksPerKey?: number;
  /** How long an id no key record has is believed unknown, so guessing keys costs no reads (default 60 s). */
  unknownKeyCacheMs?: number;
  /** Lookups of refused keys one client address may cause per second (cache misses only; default 10). */
  keyLookupsPerSecond?: number;
  /** A request whose body has not arrived this long after its headers gets 408 and is closed (default 15 s). */
  bodyTimeoutMs?: number;
  /** How often each WebSocket is pinged; one that has not answered the last ping is dropped (default 30 s). */
  pingIntervalMs?: number;
  /** Close `storage` when the gateway stops (default false). */
  closeStorage?: boolean;
}

export interface GatewayStats {
  requests: number;
  refused: number;
  sockets: number;
  /** Networks with a subscription on the storage (every socket on a network shares it). */
  storageSubscriptions: number;
  /** Subscriptions of all sockets, fanned out in memory from the storage subscriptions. */
  subscriptions: number;
  /** Subscriptions refused because a bound (socket, key, total, networks) was reached. */
  subscriptionsRefused: number;
  /** Requests refused before any key was read: an id known to be unknown, or too many lookups from one address. */
  keyLookupsSkipped: number;
  /** Key records read from the key store. */
  keyLookups: number;
  /** Requests cut with 408 because their body did not arrive in time. */
  bodyTimeouts: number;
  slowConsumersDropped: number;
  /** Sockets dropped because they did not answer a ping (a peer that vanished without closing). */
  deadSocketsDropped: number;
}

export interface Gateway {
  url: string;
  port: number;
  stats(): GatewayStats;
  /** Closes every socket (1001, so clients reconnect elsewhere), the server and the storage subscriptions. */
  stop(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** A body this many times over the limit is not even read to the end: the connection is dropped. */
const DISCARD_FACTOR = 16;
const MAX_WS_MESSAGE_BYTES = 64 * 1024;

class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: GatewayErrorCode | 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'LIMIT_EXCEEDED',
    message: string,
    readonly headers: Record<string, string> = {},
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  toWire(): WireError {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** Ids each method takes after the network id, validated before the storage sees them. */
/** What serves `history`: SpineStorage. */
interface HistorySource {
  history(networkId: string, groupId?: string, contactId?: string, options?: HistoryOptions): Promise<HistoryPage>;
}

/** An id argument that may be left out (`undefined`). */
const optional =
  (validate: (id: unknown) => string) =>
  (id: unknown): string =>
    id === undefined ? (id as unknown as string) : validate(id);

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

interface Listener {
  sub: string;
  path: ParsedPath;
  keyId: string;
  send(text: string): void;
}

/** One storage subscription on a whole network, fanned out to the listeners whose path matches. */
interface NetworkWatch {
  listeners: Set<Listener>;
  ready: Promise<Unsubscribe>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.logger ?? createLogger('gateway');
  const storage = options.storage;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  const bounds = {
    perSocket: options.maxSubscriptionsPerSocket ?? 100,
    perKey: options.maxSubscriptionsPerKey ?? 1_000,
    total: options.maxSubscriptions ?? 20_000,
    networks: options.maxWatchedNetworks ?? 200,
    networksPerKey: options.maxNetworksPerKey ?? 50,
  };
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 15_000;
  const keyLookupsPerSecond = options.keyLookupsPerSecond ?? 10;
  const limiter = new RateLimiter();
  const lookupLimiter = new RateLimiter();
  const counters = {
    requests: 0,
    refused: 0,
    slowConsumersDropped: 0,
    deadSocketsDropped: 0,
    subscriptionsRefused: 0,
    keyLookupsSkipped: 0,
    keyLookups: 0,
    bodyTimeouts: 0,
  };
  // Keyed by the key's hash: the cache holds no usable key. Refusals are cached too, so a flood of bad keys costs no reads.
  const verified = new LRUCache<string, { record: ApiKeyRecord | null }>({
    max: 10_000,
    ttl: Math.max(1, options.keyCacheMs ?? 5_000),
  });
  // Ids no record has: every key with such an id is refused without a read, however its secret varies.
  const unknownIds = new LRUCache<string, true>({
    max: 100_000,
    ttl: Math.max(1, options.unknownKeyCacheMs ?? 60_000),
  });
  const lookups = new Map<string, Promise<ApiKeyRecord | null>>();
  const watches = new Map<string, NetworkWatch>();
  const subscriptionsByKey = new Map<string, { count: number; networks: Map<string, number> }>();
  let subscriptionCount = 0;
  const sockets = new Set<WebSocket>();

  /**
   * The key's live record, read at most once per `keyCacheMs` however many requests and sockets
   * use it. A read the caches cannot spare takes a token of the client address's lookup budget
   * first (`address` is absent for rechecks of keys already accepted).
   */
  async function verifyKey(key: string, address?: string): Promise<ApiKeyRecord | null> {
    const hash = hashKey(key);
    const cached = verified.get(hash);
    if (cached) return cached.record;
    const id = keyIdOf(key);
    if (!id) return null;
    if (unknownIds.has(id)) {
      counters.keyLookupsSkipped += 1;
      return null;
    }
    if (address !== undefined) {
      const waitMs = lookupLimiter.take(address, keyLookupsPerSecond);
      if (waitMs > 0) {
        counters.keyLookupsSkipped += 1;
        throw new RequestError(
          429,
          'RATE_LIMITED',
          `too many unknown API keys from ${address}: at most ${keyLookupsPerSecond} key lookups/s; retry in ${waitMs} ms`,
          { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) },
          { retryAfterMs: waitMs },
        );
      }
    }
    let pending = lookups.get(hash);
    if (!pending) {
      counters.keyLookups += 1;
      pending = options.keys.lookup(key).then((result) => {
        if (result.record === undefined && result.refused === 'unknown') unknownIds.set(id, true);
        else verified.set(hash, { record: result.record ?? null });
        // Only refused keys spend the address's lookup budget: new good keys are never held back by it.
        if (result.record && address !== undefined) lookupLimiter.giveBack(address, keyLookupsPerSecond);
        return result.record ?? null;
      });
      const settled = pending.finally(() => lookups.delete(hash));
      settled.catch(() => undefined);
      lookups.set(hash, pending);
    }
    return pending;
  }

  async function authenticate(req: IncomingMessage): Promise<ApiKeyRecord> {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match)
      throw new RequestError(
        401,
        'UNAUTHENTICATED',
        'an API key is required: Authorization: Bearer <key> (spine keys create makes one)',
        { 'www-authenticate': 'Bearer' },
      );
    const record = await verifyKey(match[1]!, req.socket.remoteAddress ?? 'unknown');
    if (!record)
      throw new RequestError(401, 'UNAUTHENTICATED', 'the API key is unknown or revoked', {
        'www-authenticate': 'Bearer error="invalid_token"',
      });
    return record;
  }

  function limit(record: ApiKeyRecord): void {
    const waitMs = limiter.take(record.id, record.rateLimit);
    if (waitMs > 0) {
      const seconds = Math.max(1, Math.ceil(waitMs / 1000));
      throw new RequestError(
        429,
        'RATE_LIMITED',
        `key ${record.id} is over its rate limit of ${record.rateLimit} requests/s; retry in ${waitMs} ms`,
        { 'retry-after': String(seconds) },
        { retryAfterMs: waitMs },
      );
    }
  }

  function checkScope(record: ApiKeyRecord, networkId: string, access: 'read' | 'write'): void {
    if (!allows(record, networkId, access)) {
      throw new RequestError(
        403,
        'PERMISSION_DENIED',
        `key ${record.id} may not ${access} network ${JSON.stringify(networkId)}`,
      );
    }
  }

  /** The body, which must have arrived by `deadline` (performance.now() time), else 408. */
  async function readBody(req: IncomingMessage, deadline: number): Promise<string> {
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

  function parseArgs(method: MethodName, body: string): unknown[] {
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

  async function call(record: ApiKeyRecord, method: MethodName, args: unknown[]): Promise<unknown> {
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

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
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
      const record = await authenticate(req);
      keyId = record.id;
      limit(record);
      method = pathname.slice(API_PREFIX.length);
      if (!isMethodName(method))
        throw new RequestError(
          404,
          'UNKNOWN_METHOD',
          `unknown method ${JSON.stringify(method)}; methods: ${Object.keys(METHODS).join(', ')}`,
        );
      const args = parseArgs(method, await readBody(req, bodyDeadline));
      const result = await call(record, method, args);
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
  }

  // ---- subscriptions: one storage subscription per network, fanned out in memory by path

  /** Refuses, before anything is held, a subscription that would pass a bound. */
  function checkBounds(record: ApiKeyRecord, socketSubscriptions: number, networkId: string): void {
    const held = subscriptionsByKey.get(record.id);
    const refuse = (message: string, limit: number) => {
      counters.subscriptionsRefused += 1;
      throw new LimitExceededError(message, limit);
    };
    if (socketSubscriptions >= bounds.perSocket)
      refuse(
        `a socket holds at most ${bounds.perSocket} subscriptions; unsubscribe one or open another socket`,
        bounds.perSocket,
      );
    if ((held?.count ?? 0) >= bounds.perKey)
      refuse(
        `key ${record.id} holds ${held!.count} subscriptions, the most one key may hold (${bounds.perKey})`,
        bounds.perKey,
      );
    if (subscriptionCount >= bounds.total)
      refuse(`the gateway holds ${subscriptionCount} subscriptions, its limit; try again later`, bounds.total);
    if (!held?.networks.has(networkId) && (held?.networks.size ?? 0) >= bounds.networksPerKey) {
      refuse(
        `key ${record.id} subscribes to ${bounds.networksPerKey} networks, the most one key may watch at once`,
        bounds.networksPerKey,
      );
    }
    if (!watches.has(networkId) && watches.size >= bounds.networks)
      refuse(`the gateway watches ${watches.size} networks, its limit; try again later`, bounds.networks);
  }

  function addListener(listener: Listener): Promise<void> {
    const { networkId } = listener.path;
    const held = subscriptionsByKey.get(listener.keyId) ?? { count: 0, networks: new Map<string, number>() };
    subscriptionsByKey.set(listener.keyId, held);
    held.count += 1;
    held.networks.set(networkId, (held.networks.get(networkId) ?? 0) + 1);
    subscriptionCount += 1;
    let watch = watches.get(networkId);
    if (!watch) {
      const listeners = new Set<Listener>();
      const deliver = (state: GroupState | null, change: GroupChange) => {
        let tail: string | undefined;
        for (const l of listeners) {
          if (!pathMatches(l.path, change.networkId, change.groupId)) continue;
          // Encoded once for every socket it goes to.
          tail ??= `,"state":${encode(state)},"change":${encode(change)}}`;
          l.send(`{"type":"change","sub":${JSON.stringify(l.sub)}${tail}`);
        }
      };
      const created: NetworkWatch = { listeners, ready: storage.subscribe(networkId, deliver) };
      watch = created;
      watches.set(networkId, created);
      created.ready.catch(() => {
        if (watches.get(networkId) === created) watches.delete(networkId);
      });
    }
    watch.listeners.add(listener);
    return watch.ready.then(() => undefined);
  }

  function removeListener(listener: Listener): void {
    const { networkId } = listener.path;
    const watch = watches.get(networkId);
    if (!watch || !watch.listeners.delete(listener)) return;
    subscriptionCount -= 1;
    const held = subscriptionsByKey.get(listener.keyId);
    if (held) {
      held.count -= 1;
      const onNetwork = (held.networks.get(networkId) ?? 1) - 1;
      if (onNetwork > 0) held.networks.set(networkId, onNetwork);
      else held.networks.delete(networkId);
      if (held.count === 0) subscriptionsByKey.delete(listener.keyId);
    }
    if (watch.listeners.size > 0) return;
    watches.delete(networkId);
    watch.ready
      .then((unsubscribe) => unsubscribe())
      .catch((error: unknown) => log.warn('removing a storage subscription failed', { networkId, error }));
  }

  const alive = new WeakMap<WebSocket, boolean>();
  // Half-open connections (a client that vanished) hold subscriptions until something notices.
  const heartbeat = setInterval(() => {
    for (const ws of sockets) {
      if (alive.get(ws) === false) {
        counters.deadSocketsDropped += 1;
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, options.pingIntervalMs ?? 30_000);
  heartbeat.unref();

  function onConnection(ws: WebSocket, record: ApiKeyRecord, key: string): void {
    sockets.add(ws);
    alive.set(ws, true);
    ws.on('pong', () => alive.set(ws, true));
    const subs = new Map<string, Listener>();
    const send = (text: string) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (ws.bufferedAmount + text.length > maxBufferedBytes) {
        counters.slowConsumersDropped += 1;
        log.warn('closing a slow consumer', { keyId: record.id, bufferedBytes: ws.bufferedAmount });
        ws.close(CLOSE_CODES.slowConsumer, 'slow consumer: send buffer full');
        // A client that reads nothing never answers the close either.
        setTimeout(() => ws.terminate(), 1_000).unref();
        return;
      }
      ws.send(text);
    };
    const sendError = (error: unknown, sub?: string) => {
      const wire = error instanceof RequestError ? error.toWire() : errorToWire(error).error;
      send(JSON.stringify({ type: 'error', ...(sub !== undefined ? { sub } : {}), error: wire }));
    };
    // A revoked key loses its open sockets too, once the cache stops vouching for it.
    const recheck = setInterval(
      () => {
        verifyKey(key)
          .then((still) => {
            if (!still) ws.close(CLOSE_CODES.unauthenticated, 'API key revoked');
          })
          .catch((error: unknown) => log.warn('rechecking a socket key failed', { keyId: record.id, error }));
      },
      Math.max(1_000, options.keyCacheMs ?? 5_000),
    );
    recheck.unref();

    ws.on('message', (data: RawData, isBinary: boolean) => {
      let message: ClientMessage;
      try {
        if (isBinary) throw new RequestError(400, 'MALFORMED_REQUEST', 'messages must be text');
        const parsed = decode<ClientMessage>(data.toString());
        if (
          !parsed ||
          typeof parsed !== 'object' ||
          typeof parsed.sub !== 'string' ||
          parsed.sub.length === 0 ||
          parsed.sub.length > 100
        ) {
          throw new RequestError(
            400,
            'MALFORMED_REQUEST',
            'a message is { type: "subscribe", sub, path } or { type: "unsubscribe", sub } with sub a string of 1-100 characters',
          );
        }
        message = parsed;
        limit(record);
      } catch (error) {
        return sendError(
          error instanceof RequestError
            ? error
            : new RequestError(400, 'MALFORMED_REQUEST', `unreadable message: ${(error as Error).message}`),
        );
      }
      const { sub } = message;
      if (message.type === 'unsubscribe') {
        const held = subs.get(sub);
        if (held) {
          subs.delete(sub);
          removeListener(held);
        }
        return;
      }
      if (message.type !== 'subscribe')
        return sendError(
          new RequestError(
            400,
            'MALFORMED_REQUEST',
            `unknown message type ${JSON.stringify((message as { type: unknown }).type)}`,
          ),
          sub,
        );
      let path: ParsedPath;
      try {
        path = parsePath(message.path);
        checkScope(record, path.networkId, 'read');
        if (subs.has(sub))
          throw new InvalidArgumentError(`subscription ${JSON.stringify(sub)} exists already on this socket`);
        checkBounds(record, subs.size, path.networkId);
      } catch (error) {
        return sendError(error, sub);
      }
      const listener: Listener = { sub, path, keyId: record.id, send };
      subs.set(sub, listener);
      addListener(listener).then(
        () => send(JSON.stringify({ type: 'subscribed', sub })),
        (error: unknown) => {
          if (subs.get(sub) === listener) subs.delete(sub);
          removeListener(listener);
          log.error('subscribing failed', { path: message.path, error });
          sendError(error, sub);
        },
      );
    });
    ws.on('close', () => {
      clearInterval(recheck);
      sockets.delete(ws);
      for (const listener of subs.values()) removeListener(listener);
      subs.clear();
    });
    ws.on('error', (error) => log.warn('socket error', { keyId: record.id, error }));
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES });

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const refuse = (status: number, wire: WireError, headers: Record<string, string> = {}) => {
      counters.refused += 1;
      const body = JSON.stringify({ error: wire });
      const lines = [
        `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`,
        'content-type: application/json',
        `content-length: ${Buffer.byteLength(body)}`,
        'connection: close',
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
    };
    try {
      const { pathname } = new URL(req.url ?? '/', 'http://gateway');
      if (pathname !== SUBSCRIBE_PATH)
        throw new RequestError(404, 'UNKNOWN_METHOD', `WebSocket connections go to ${SUBSCRIBE_PATH}`);
      const record = await authenticate(req);
      limit(record);
      const key = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization!)![1]!;
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, record, key));
    } catch (error) {
      if (error instanceof RequestError) return refuse(error.status, error.toWire(), error.headers);
      log.error('upgrade failed', { error });
      const { status, error: wire } = errorToWire(error);
      refuse(status, wire);
    }
  }

  // Node's own request timeout backs the body deadline up (it also covers bodies of refused requests being drained).
  const server: Server = createServer(
    {
      requestTimeout: bodyTimeoutMs + 5_000,
      headersTimeout: Math.min(60_000, bodyTimeoutMs + 5_000),
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(bodyTimeoutMs / 4))),
    },
    (req, res) => void handle(req, res),
  );
  server.on('upgrade', (req, socket, head) => void upgrade(req, socket, head));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info('gateway listening', { url });

  let stopping: Promise<void> | undefined;
  const release = async () => {
    clearInterval(heartbeat);
    for (const ws of sockets) ws.close(CLOSE_CODES.goingAway, 'gateway stopping');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const ws of sockets) ws.terminate();
    wss.close();
    await closed;
    const entries = [...watches.values()];
    watches.clear();
    await Promise.all(entries.map((entry) => entry.ready.then((unsubscribe) => unsubscribe()).catch(() => undefined)));
    if (options.closeStorage) await storage.close();
    log.info('gateway stopped', { url });
  };
  return {
    url,
    port,
    stats: () => ({
      ...counters,
      sockets: sockets.size,
      storageSubscriptions: watches.size,
      subscriptions: subscriptionCount,
    }),
    stop: () => (stopping ??= release()),
  };
}

const STATUS_TEXT: Record<number, string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};
