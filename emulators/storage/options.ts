import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, type Logger } from '../../shared/log';
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

export interface ResolvedStorageEmulatorOptions {
  host: string;
  port: number;
  dataDir: string | undefined;
  logger: Logger;
  objectRateLimit: ObjectRateLimit | undefined;
}

/** A setting that cannot work; the message names it. */
export class StorageEmulatorSettingError extends Error {
  constructor(
    readonly setting: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`storage emulator setting ${setting}=${JSON.stringify(value)} ${reason}`);
    this.name = 'StorageEmulatorSettingError';
  }
}

/** Validates the options once, as they enter. */
export function resolveStorageEmulatorOptions(input: StorageEmulatorOptions = {}): ResolvedStorageEmulatorOptions {
  const host = input.host ?? DEFAULT_HOST;
  if (!host.trim()) throw new StorageEmulatorSettingError('host', host, 'must not be empty');
  const port = input.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new StorageEmulatorSettingError('port', port, 'must be an integer from 0 (any free port) to 65535');
  }
  if (input.dataDir !== undefined && !input.dataDir.trim()) {
    throw new StorageEmulatorSettingError('dataDir', input.dataDir, 'must be a directory path');
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
    throw new StorageEmulatorSettingError('objectRateLimit.writesPerSecond', limit.writesPerSecond, 'must be a positive number');
  }
  if (!(limit.burst >= 1)) throw new StorageEmulatorSettingError('objectRateLimit.burst', limit.burst, 'must be at least 1');
  return limit;
}

/** Environment variables the command line falls back to. */
export const ENV = {
  host: 'STORAGE_EMULATOR_LISTEN_HOST',
  port: 'STORAGE_EMULATOR_PORT',
  dataDir: 'STORAGE_EMULATOR_DATA_DIR',
  objectRateLimit: 'STORAGE_EMULATOR_OBJECT_RATE_LIMIT',
} as const;

/**
 * Command line → options: each setting from its flag, else its environment variable, else the
 * default. Pure, so tests can pass argv and env.
 *
 *   --host H  --port N  --data-dir D  --object-rate-limit
 */
export function parseStorageEmulatorCommandLine(argv: string[], env: NodeJS.ProcessEnv): StorageEmulatorOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        'object-rate-limit': { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new StorageEmulatorSettingError('argv', argv.join(' '), `is not understood: ${(error as Error).message}`);
  }
  const portText = (values.port as string | undefined) ?? env[ENV.port];
  const port = portText === undefined ? undefined : Number(portText);
  if (portText !== undefined && (!/^\d+$/.test(portText) || Number.isNaN(port))) {
    throw new StorageEmulatorSettingError('port', portText, 'must be an integer from 0 to 65535');
  }
  const host = (values.host as string | undefined) ?? env[ENV.host];
  const dataDir = (values['data-dir'] as string | undefined) ?? env[ENV.dataDir];
  const rateLimited = values['object-rate-limit'] === true || isTruthy(env[ENV.objectRateLimit]);
  return {
    ...(host !== undefined && { host }),
    ...(port !== undefined && { port }),
    ...(dataDir !== undefined && { dataDir }),
    ...(rateLimited && { objectRateLimit: true }),
  };
}

function isTruthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.toLowerCase());
}
