/**
 * The gateway as `npm start` and Cloud Run run it: SpineStorage on the mesh of the settings, and
 * key records in the mesh's bucket, where `spine keys` writes them.
 */
import type { Logger } from '../shared/log';
import { SpineStorage } from '../shared/mesh/spine-storage';
import { createStorageClient } from '../shared/mesh/storage-client';
import { loadSettings, parseSettings } from '../shared/settings';
import { ApiKeys, GcsKeyRecords } from './keys';
import { startGateway, type Gateway } from './server';

type Env = Record<string, string | undefined>;

export interface GatewaySettings {
  /** PORT (Cloud Run sets it), default 8080. */
  port: number;
  /** SPINE_GATEWAY_HOST, default 127.0.0.1. */
  host: string;
  /** SPINE_GATEWAY_MAX_BODY_BYTES, default 1 MiB. */
  maxBodyBytes: number;
  /** SPINE_GATEWAY_KEY_CACHE_MS, default 5000: how long a revoked key may still be honoured. */
  keyCacheMs: number;
  /** SPINE_GATEWAY_MAX_BUFFERED_BYTES, default 1 MiB per WebSocket before it is closed as a slow consumer. */
  maxBufferedBytes: number;
}

/** What one client may hold of the gateway, and how long it may take to send a request. */
export interface GatewayLimits {
  /** SPINE_GATEWAY_MAX_SUBSCRIPTIONS_PER_SOCKET, default 100. */
  maxSubscriptionsPerSocket: number;
  /** SPINE_GATEWAY_MAX_SUBSCRIPTIONS_PER_KEY, default 1000 (all sockets of one key together). */
  maxSubscriptionsPerKey: number;
  /** SPINE_GATEWAY_MAX_SUBSCRIPTIONS, default 20000 (the whole gateway; they cost its memory, not Pub/Sub). */
  maxSubscriptions: number;
  /** SPINE_GATEWAY_MAX_WATCHED_NETWORKS, default 200: storage (Pub/Sub) subscriptions, one per network watched. */
  maxWatchedNetworks: number;
  /** SPINE_GATEWAY_MAX_NETWORKS_PER_KEY, default 50: networks one key's subscriptions may span. */
  maxNetworksPerKey: number;
  /** SPINE_GATEWAY_UNKNOWN_KEY_CACHE_MS, default 60000: how long an id without a key record is refused without a read. */
  unknownKeyCacheMs: number;
  /** SPINE_GATEWAY_KEY_LOOKUPS_PER_SECOND, default 10: key records one client address may have read (cache misses). */
  keyLookupsPerSecond: number;
  /** SPINE_GATEWAY_BODY_TIMEOUT_MS, default 15000: a request body must have arrived this long after the headers, else 408. */
  bodyTimeoutMs: number;
}

/** The gateway's limits from the environment (see the settings table); a bad one throws a SettingError naming it. */
export function loadGatewayLimits(env: Env = process.env): GatewayLimits {
  const {
    maxSubscriptionsPerSocket,
    maxSubscriptionsPerKey,
    maxSubscriptions,
    maxWatchedNetworks,
    maxNetworksPerKey,
    unknownKeyCacheMs,
    keyLookupsPerSecond,
    bodyTimeoutMs,
  } = parseSettings('gateway', { env });
  return {
    maxSubscriptionsPerSocket,
    maxSubscriptionsPerKey,
    maxSubscriptions,
    maxWatchedNetworks,
    maxNetworksPerKey,
    unknownKeyCacheMs,
    keyLookupsPerSecond,
    bodyTimeoutMs,
  };
}

export function loadGatewaySettings(env: Env = process.env): GatewaySettings {
  const { gatewayPort, gatewayHost, maxBodyBytes, keyCacheMs, maxBufferedBytes } = parseSettings('gateway', { env });
  return { port: gatewayPort, host: gatewayHost, maxBodyBytes, keyCacheMs, maxBufferedBytes };
}

/** Starts the gateway on the mesh the environment describes; stopping it closes its mesh client. */
export async function startGatewayFromEnv(
  env: Env,
  options: { port?: number; logger?: Logger } = {},
): Promise<Gateway> {
  const settings = loadSettings(env);
  const gatewaySettings = loadGatewaySettings(env);
  const limits = loadGatewayLimits(env);
  const storage = SpineStorage.fromEnv(env, {
    writerId: 'gateway',
    ...(options.logger ? { logger: options.logger.child({ part: 'client' }) } : {}),
  });
  try {
    await storage.initialize();
    const keys = new ApiKeys(new GcsKeyRecords(createStorageClient(settings), settings.bucket));
    return await startGateway({
      storage,
      keys,
      port: options.port ?? gatewaySettings.port,
      host: gatewaySettings.host,
      maxBodyBytes: gatewaySettings.maxBodyBytes,
      keyCacheMs: gatewaySettings.keyCacheMs,
      maxBufferedBytes: gatewaySettings.maxBufferedBytes,
      ...limits,
      closeStorage: true,
      ...(options.logger ? { logger: options.logger } : {}),
    });
  } catch (error) {
    await storage.close();
    throw error;
  }
}
