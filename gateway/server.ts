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
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type Logger } from '../shared/log';
import { CLOSE_CODES } from '../shared/remote/protocol';
import { Authenticator } from './authentication';
import { methodRoutes, type GatewayStorage } from './http-methods';
import type { ApiKeys } from './keys';
import { newCounters } from './request-error';
import { SocketServer } from './socket-server';
import { SubscriptionHub } from './subscription-hub';

export interface GatewayOptions {
  /** What the gateway serves; `flush()` is called for `POST /v1/flush` when it has one (SpineStorage). */
  storage: GatewayStorage;
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

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.logger ?? createLogger('gateway');
  const storage = options.storage;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 15_000;
  const keyCacheMs = options.keyCacheMs ?? 5_000;
  const counters = newCounters();
  const auth = new Authenticator({
    keys: options.keys,
    keyCacheMs,
    unknownKeyCacheMs: options.unknownKeyCacheMs ?? 60_000,
    keyLookupsPerSecond: options.keyLookupsPerSecond ?? 10,
    counters,
  });
  const hub = new SubscriptionHub(
    storage,
    {
      perSocket: options.maxSubscriptionsPerSocket ?? 100,
      perKey: options.maxSubscriptionsPerKey ?? 1_000,
      total: options.maxSubscriptions ?? 20_000,
      networks: options.maxWatchedNetworks ?? 200,
      networksPerKey: options.maxNetworksPerKey ?? 50,
    },
    counters,
    log,
  );
  const sockets = new SocketServer({
    auth,
    hub,
    counters,
    log,
    maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024,
    keyCacheMs,
    pingIntervalMs: options.pingIntervalMs ?? 30_000,
  });
  const handle = methodRoutes({
    storage,
    auth,
    counters,
    log,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    bodyTimeoutMs,
  });

  // Node's own request timeout backs the body deadline up (it also covers bodies of refused requests being drained).
  const server: Server = createServer(
    {
      requestTimeout: bodyTimeoutMs + 5_000,
      headersTimeout: Math.min(60_000, bodyTimeoutMs + 5_000),
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(bodyTimeoutMs / 4))),
    },
    (req, res) => void handle(req, res),
  );
  server.on('upgrade', (req, socket, head) => void sockets.upgrade(req, socket, head));
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
    sockets.closeAll(CLOSE_CODES.goingAway, 'gateway stopping');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    sockets.terminateAll();
    await closed;
    await hub.close();
    if (options.closeStorage) await storage.close();
    log.info('gateway stopped', { url });
  };
  return {
    url,
    port,
    stats: () => ({
      ...counters,
      sockets: sockets.size,
      storageSubscriptions: hub.watchedNetworks,
      subscriptions: hub.subscriptions,
    }),
    stop: () => (stopping ??= release()),
  };
}
