import path from 'node:path';
import { createLogger, type Logger } from '../../shared/log';
import { parseSettings, SettingError, SETTINGS } from '../../shared/settings';
import { SERVICE_OBJECT_RATE_LIMIT, type ObjectRateLimit } from './rate-limit';

export const DEFAULT_HOST = '127.0.0.1';

export interface StorageEmulatorOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** 0 or omitted: any free port. */
  port?: number;
  /** Keep state in this directory so it survives a restart; omitted: memory only. */
  dataDir?: string;
  logger?: Logger;
  /**
   * Simulate the service's limit of about one mutation per second per object name (429
   * rateLimitExceeded). `true` = that limit; an object tunes it. Off by default.
   */
  objectRateLimit?: boolean | Partial<ObjectRateLimit>;
}

/** @internal The options after validation, as the emulator's parts take them. */
export interface ResolvedStorageEmulatorOptions {
  host: string;
  port: number;
  dataDir: string | undefined;
  logger: Logger;
  objectRateLimit: ObjectRateLimit | undefined;
}

/** A setting that cannot work: the project's one `SettingError`, under the name this package exported it by. */
export const StorageEmulatorSettingError = SettingError;
export type StorageEmulatorSettingError = SettingError;

/**
 * Validates the options once, as they enter.
 * @internal startStorageEmulator validates its options with it; exported for its tests.
 */
export function resolveStorageEmulatorOptions(input: StorageEmulatorOptions = {}): ResolvedStorageEmulatorOptions {
  const host = input.host ?? DEFAULT_HOST;
  if (!host.trim()) throw new StorageEmulatorSettingError('host', host, 'a host, not empty');
  const port = input.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new StorageEmulatorSettingError('port', port, 'an integer from 0 (any free port) to 65535');
  }
  if (input.dataDir !== undefined && !input.dataDir.trim()) {
    throw new StorageEmulatorSettingError('dataDir', input.dataDir, 'a directory path');
  }
  return {
    host,
    port,
    dataDir: input.dataDir === undefined ? undefined : path.resolve(input.dataDir),
    logger: input.logger ?? createLogger('storage-emulator'),
    objectRateLimit: resolveRateLimit(input.objectRateLimit),
  };
}

function resolveRateLimit(input: StorageEmulatorOptions['objectRateLimit']): ObjectRateLimit | undefined {
  if (input === undefined || input === false) return undefined;
  const limit = input === true ? SERVICE_OBJECT_RATE_LIMIT : { ...SERVICE_OBJECT_RATE_LIMIT, ...input };
  if (!(limit.writesPerSecond > 0)) {
    throw new StorageEmulatorSettingError(
      'objectRateLimit.writesPerSecond',
      limit.writesPerSecond,
      'a positive number',
    );
  }
  if (!(limit.burst >= 1))
    throw new StorageEmulatorSettingError('objectRateLimit.burst', limit.burst, 'a number of at least 1');
  return limit;
}

/** Environment variables the command line falls back to (defined in the settings table). */
export const ENV = {
  host: SETTINGS.storageEmulatorListenHost.variable,
  port: SETTINGS.storageEmulatorPort.variable,
  dataDir: SETTINGS.storageEmulatorDataDir.variable,
  objectRateLimit: SETTINGS.storageEmulatorObjectRateLimit.variable,
} as const;

/**
 * Command line → options: each setting from its flag, else its environment variable, else left
 * to `resolveStorageEmulatorOptions`'s default, through the one settings parser. Pure, so tests
 * can pass argv and env.
 *
 *   --host H  --port N  --data-dir D  --object-rate-limit
 * @internal The command line of emulators/storage/main.ts; exported for its tests.
 */
export function parseStorageEmulatorCommandLine(argv: string[], env: NodeJS.ProcessEnv): StorageEmulatorOptions {
  const settings = parseSettings('storage-emulator', { argv, env });
  const { storageEmulatorListenHost: host, storageEmulatorPort: port, storageEmulatorDataDir: dataDir } = settings;
  return {
    ...(host !== undefined && { host }),
    ...(port !== undefined && { port }),
    ...(dataDir !== undefined && { dataDir }),
    ...(settings.storageEmulatorObjectRateLimit === true && { objectRateLimit: true }),
  };
}
