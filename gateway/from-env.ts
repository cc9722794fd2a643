/**
 * The gateway as `npm start` and Cloud Run run it: SpineStorage on the mesh of the settings, and
 * key records in the mesh's bucket, where `spine keys` writes them.
 */
import type { Logger } from '../shared/log';
import { SpineStorage } from '../shared/mesh/spine-storage';
import { createStorageClient } from '../shared/mesh/storage-client';
import { loadSettings, wholeNumberIn } from '../shared/settings';
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

export function loadGatewaySettings(env: Env = process.env): GatewaySettings {
  return {
    port: wholeNumberIn(env, 'PORT', 8080, 0, 65535),
    host: env.SPINE_GATEWAY_HOST || '127.0.0.1',
    maxBodyBytes: wholeNumberIn(env, 'SPINE_GATEWAY_MAX_BODY_BYTES', 1024 * 1024, 1024, 32 * 1024 * 1024, 'bytes'),
    keyCacheMs: wholeNumberIn(env, 'SPINE_GATEWAY_KEY_CACHE_MS', 5_000, 1, 300_000, 'milliseconds'),
    maxBufferedBytes: wholeNumberIn(env, 'SPINE_GATEWAY_MAX_BUFFERED_BYTES', 1024 * 1024, 16 * 1024, 256 * 1024 * 1024, 'bytes'),
  };
}

/** Starts the gateway on the mesh the environment describes; stopping it closes its mesh client. */
export async function startGatewayFromEnv(env: Env, options: { port?: number; logger?: Logger } = {}): Promise<Gateway> {
  const settings = loadSettings(env);
  const gatewaySettings = loadGatewaySettings(env);
  const storage = SpineStorage.fromEnv(env, { writerId: 'gateway', ...(options.logger ? { logger: options.logger.child({ part: 'client' }) } : {}) });
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
      closeStorage: true,
      ...(options.logger ? { logger: options.logger } : {}),
    });
  } catch (error) {
    await storage.close();
    throw error;
  }
}
