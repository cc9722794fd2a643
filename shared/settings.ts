import { isBucketName } from './bucket-name';
import { everyMinutesCron } from './interval-schedule';
import { InvalidArgumentError } from './errors';
import { MAX_BUNDLED_WRITES } from './events/types';
import { DEFAULT_BUNDLING, MAX_BUNDLE_BYTES, MAX_LINGER_MS, type BundlingLimits } from './mesh/write-bundler';

/**
 * Every deployment setting, defined once: environment variable, default and validator.
 * `loadSettings(env)` is pure so tests can inject an environment. A bad setting fails at
 * start-up with an error that names it.
 */
export type PersistOn = 'immediate' | 'batch' | 'interval' | 'manual';
export const PERSIST_MODES: readonly PersistOn[] = ['immediate', 'batch', 'interval', 'manual'];
export type StateStoreKind = 'gcs' | 'filesystem' | 'postgres';
export const STATE_STORES: readonly StateStoreKind[] = ['gcs', 'filesystem', 'postgres'];
/** Where PostgresStorage keeps snapshots: in its own tables, or as objects in SPINE_BUCKET. */
export type PostgresSnapshotStore = 'database' | 'gcs';
export const POSTGRES_SNAPSHOT_STORES: readonly PostgresSnapshotStore[] = ['database', 'gcs'];

export interface SpineSettings {
  projectId: string;
  /** Prefix of every topic, subscription, queue and job name, so deployments can share a project. */
  topicPrefix: string;
  /** Bucket holding materialized state, large content, dead letters and snapshots. */
  bucket: string;
  /** Prefix of the state objects inside the bucket. */
  statePrefix: string;
  /** Where the functions materialize state: Cloud Storage (default) or a local folder. */
  stateStore: StateStoreKind;
  /** Folder of the `filesystem` state store. */
  statePath?: string;
  /** Connection string of the `postgres` state store (SPINE_POSTGRES_URL); required when it is chosen. */
  postgresUrl?: string;
  /** Schema holding the `postgres` store's tables (SPINE_POSTGRES_SCHEMA, default `spine`). */
  postgresSchema: string;
  /** Connections per process to PostgreSQL (SPINE_POSTGRES_POOL_SIZE, default 10). */
  postgresPoolSize: number;
  /** Where the `postgres` store keeps snapshots (SPINE_POSTGRES_SNAPSHOTS, default `database`). */
  postgresSnapshots: PostgresSnapshotStore;
  /** Log in to Cloud SQL with a Google access token as the password (SPINE_POSTGRES_IAM_AUTH, default false). */
  postgresIamAuth: boolean;
  /** Roles the migrating user grants read and write rights on the tables (SPINE_POSTGRES_GRANT_TO, comma-separated). */
  postgresGrantTo: string[];
  persistOn: PersistOn;
  /** Per-network exceptions to `persistOn`. */
  persistOverrides: Record<string, PersistOn>;
  batchWindowMs: number;
  intervalMs: number;
  /** Snapshots kept per network by the snapshot function (newest first). */
  maxSnapshots: number;
  /** Base URL of each function (Cloud Tasks need absolute targets); from SPINE_FUNCTION_URLS. */
  functionUrls: Partial<Record<string, string>>;
  /** Location of the Cloud Tasks queues. */
  tasksLocation: string;
  /**
   * How a writer gathers its writes to one group while a publish is in flight (SPINE_BUNDLE_MAX_WRITES,
   * SPINE_BUNDLE_MAX_BYTES, SPINE_BUNDLE_LINGER_MS); a maximum of 1 write sends every write alone.
   */
  bundling: BundlingLimits;
  /** `host:port` of the Pub/Sub emulator, when one is used. */
  pubsubEmulatorHost?: string;
  /** `http://host:port` of the Cloud Storage emulator, when one is used. */
  storageEmulatorHost?: string;
  /** `host:port` of the Cloud Tasks emulator, when one is used. */
  tasksEmulatorHost?: string;
}

type Env = Record<string, string | undefined>;

const NAME_PREFIX = /^[a-z][a-z0-9-]{0,30}$/;
const HOST_PORT = /^[^\s/:]+:\d{1,5}$/;

function fail(variable: string, value: string, expected: string): never {
  throw new InvalidArgumentError(`setting ${variable}=${JSON.stringify(value)} is invalid: expected ${expected}`);
}

function positiveInt(env: Env, variable: string, fallback: number, expected = 'a positive whole number of milliseconds'): number {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) fail(variable, raw, expected);
  return value;
}

/** A whole-number setting within [min, max]; a bad value fails naming the variable. */
export function wholeNumberIn(env: Env, variable: string, fallback: number, min: number, max: number, unit = ''): number {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) fail(variable, raw, `a whole number${unit ? ` of ${unit}` : ''} from ${min} to ${max}`);
  return value;
}

/** A true/false setting; anything else fails naming the variable. */
export function booleanSetting(env: Env, variable: string, fallback: boolean): boolean {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  if (raw !== 'true' && raw !== 'false') fail(variable, raw, 'true | false');
  return raw === 'true';
}

/** The interval flush is a Cloud Scheduler job: whole minutes that divide an hour or a day. */
function wholeMinutes(env: Env, variable: string, fallback: number): number {
  const value = positiveInt(env, variable, fallback);
  if (everyMinutesCron(value / 60_000) === undefined) fail(variable, String(value), 'whole minutes dividing an hour or a day (60000, 120000, …, 3600000, …), the scheduler\'s granularity');
  return value;
}

export const DEFAULT_PROJECT_ID = 'spine-local';

export function loadSettings(env: Env = process.env): SpineSettings {
  const projectId = env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || env.PUBSUB_PROJECT_ID || DEFAULT_PROJECT_ID;
  if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(projectId)) fail('GOOGLE_CLOUD_PROJECT', projectId, 'a project id (6-30 lowercase letters, digits, hyphens)');

  const topicPrefix = env.SPINE_TOPIC_PREFIX ?? 'spine-';
  if (topicPrefix !== '' && !NAME_PREFIX.test(topicPrefix)) fail('SPINE_TOPIC_PREFIX', topicPrefix, 'lowercase letters, digits and hyphens, starting with a letter, at most 31 characters');

  const bucket = env.SPINE_BUCKET || `${projectId}-spine-state`;
  if (!isBucketName(bucket)) fail('SPINE_BUCKET', bucket, 'a bucket name (3-63 lowercase letters, digits, dots, hyphens, underscores; up to 222 in dot-separated parts)');

  const statePrefix = env.SPINE_STATE_PREFIX ?? '';
  if (statePrefix !== '' && (!statePrefix.endsWith('/') || statePrefix.startsWith('/') || statePrefix.includes('..'))) {
    fail('SPINE_STATE_PREFIX', statePrefix, 'a relative object prefix ending in "/"');
  }

  const persistOn = (env.SPINE_PERSIST_ON || 'immediate') as PersistOn;
  if (!PERSIST_MODES.includes(persistOn)) fail('SPINE_PERSIST_ON', persistOn, PERSIST_MODES.join(' | '));

  const persistOverrides: Record<string, PersistOn> = {};
  if (env.SPINE_PERSIST_OVERRIDES) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(env.SPINE_PERSIST_OVERRIDES);
    } catch {
      fail('SPINE_PERSIST_OVERRIDES', env.SPINE_PERSIST_OVERRIDES, 'a JSON object of network id to persistence mode');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) fail('SPINE_PERSIST_OVERRIDES', env.SPINE_PERSIST_OVERRIDES, 'a JSON object of network id to persistence mode');
    for (const [networkId, mode] of Object.entries(parsed as Record<string, unknown>)) {
      if (!PERSIST_MODES.includes(mode as PersistOn)) fail('SPINE_PERSIST_OVERRIDES', env.SPINE_PERSIST_OVERRIDES, `a mode (${PERSIST_MODES.join(' | ')}) for network ${networkId}`);
      persistOverrides[networkId] = mode as PersistOn;
    }
  }

  const functionUrls: Partial<Record<string, string>> = {};
  if (env.SPINE_FUNCTION_URLS) {
    try {
      Object.assign(functionUrls, JSON.parse(env.SPINE_FUNCTION_URLS));
    } catch {
      fail('SPINE_FUNCTION_URLS', env.SPINE_FUNCTION_URLS, 'a JSON object of function name to URL');
    }
  }

  const stateStore = (env.SPINE_STATE_STORE || 'gcs') as StateStoreKind;
  if (!STATE_STORES.includes(stateStore)) fail('SPINE_STATE_STORE', stateStore, STATE_STORES.join(' | '));
  if (stateStore === 'filesystem' && !env.SPINE_STATE_PATH) fail('SPINE_STATE_PATH', '', 'a folder, required when SPINE_STATE_STORE=filesystem');
  if (stateStore === 'postgres' && !env.SPINE_POSTGRES_URL) fail('SPINE_POSTGRES_URL', '', 'a PostgreSQL connection string (postgresql://user@host:port/database), required when SPINE_STATE_STORE=postgres');
  if (env.SPINE_POSTGRES_URL && !/^postgres(ql)?:\/\//.test(env.SPINE_POSTGRES_URL)) fail('SPINE_POSTGRES_URL', '(not shown: may hold a password)', 'a connection string starting with postgresql:// or postgres://');
  const postgresSchema = env.SPINE_POSTGRES_SCHEMA || 'spine';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(postgresSchema)) fail('SPINE_POSTGRES_SCHEMA', postgresSchema, 'a lowercase SQL identifier (letters, digits, underscores, at most 63, not starting with a digit)');
  const postgresSnapshots = (env.SPINE_POSTGRES_SNAPSHOTS || 'database') as PostgresSnapshotStore;
  if (!POSTGRES_SNAPSHOT_STORES.includes(postgresSnapshots)) fail('SPINE_POSTGRES_SNAPSHOTS', postgresSnapshots, POSTGRES_SNAPSHOT_STORES.join(' | '));
  const postgresGrantTo = (env.SPINE_POSTGRES_GRANT_TO ?? '').split(',').map((role) => role.trim()).filter(Boolean);
  for (const role of postgresGrantTo) {
    if (Buffer.byteLength(role) > 63 || /[\u0000-\u001f\u007f]/.test(role)) fail('SPINE_POSTGRES_GRANT_TO', env.SPINE_POSTGRES_GRANT_TO!, 'comma-separated role names of at most 63 bytes');
  }
  const iamAuth = env.SPINE_POSTGRES_IAM_AUTH || 'false';
  if (iamAuth !== 'true' && iamAuth !== 'false') fail('SPINE_POSTGRES_IAM_AUTH', iamAuth, 'true | false');

  const settings: SpineSettings = {
    projectId,
    topicPrefix,
    bucket,
    statePrefix,
    stateStore,
    ...(env.SPINE_STATE_PATH ? { statePath: env.SPINE_STATE_PATH } : {}),
    ...(env.SPINE_POSTGRES_URL ? { postgresUrl: env.SPINE_POSTGRES_URL } : {}),
    postgresSchema,
    postgresPoolSize: positiveInt(env, 'SPINE_POSTGRES_POOL_SIZE', 10, 'a positive whole number of connections'),
    postgresSnapshots,
    postgresIamAuth: iamAuth === 'true',
    postgresGrantTo,
    persistOn,
    persistOverrides,
    functionUrls,
    tasksLocation: env.SPINE_TASKS_LOCATION || 'us-central1',
    batchWindowMs: positiveInt(env, 'SPINE_BATCH_WINDOW_MS', 1_000),
    intervalMs: wholeMinutes(env, 'SPINE_INTERVAL_MS', 60_000),
    maxSnapshots: positiveInt(env, 'SPINE_MAX_SNAPSHOTS', 24, 'a positive whole number of snapshots'),
    bundling: {
      maxWrites: wholeNumberIn(env, 'SPINE_BUNDLE_MAX_WRITES', DEFAULT_BUNDLING.maxWrites, 1, MAX_BUNDLED_WRITES, 'writes'),
      maxBytes: wholeNumberIn(env, 'SPINE_BUNDLE_MAX_BYTES', DEFAULT_BUNDLING.maxBytes, 1024, MAX_BUNDLE_BYTES, 'bytes'),
      lingerMs: wholeNumberIn(env, 'SPINE_BUNDLE_LINGER_MS', DEFAULT_BUNDLING.lingerMs, 0, MAX_LINGER_MS, 'milliseconds'),
    },
  };
  if (env.PUBSUB_EMULATOR_HOST) {
    if (!HOST_PORT.test(env.PUBSUB_EMULATOR_HOST)) fail('PUBSUB_EMULATOR_HOST', env.PUBSUB_EMULATOR_HOST, 'host:port');
    settings.pubsubEmulatorHost = env.PUBSUB_EMULATOR_HOST;
  }
  if (env.STORAGE_EMULATOR_HOST) {
    if (!/^https?:\/\/[^\s/]+(:\d+)?\/?$/.test(env.STORAGE_EMULATOR_HOST)) fail('STORAGE_EMULATOR_HOST', env.STORAGE_EMULATOR_HOST, 'http://host:port');
    settings.storageEmulatorHost = env.STORAGE_EMULATOR_HOST.replace(/\/$/, '');
  }
  if (env.CLOUD_TASKS_EMULATOR_HOST) {
    if (!HOST_PORT.test(env.CLOUD_TASKS_EMULATOR_HOST)) fail('CLOUD_TASKS_EMULATOR_HOST', env.CLOUD_TASKS_EMULATOR_HOST, 'host:port');
    settings.tasksEmulatorHost = env.CLOUD_TASKS_EMULATOR_HOST;
  }
  return settings;
}

/** The persistence mode of one network: its override, or the deployment's. */
export function persistModeFor(settings: Pick<SpineSettings, 'persistOn' | 'persistOverrides'>, networkId: string): PersistOn {
  return settings.persistOverrides[networkId] ?? settings.persistOn;
}

/** True when any network's writes wait in the pending buffer for the persist function. */
export function usesBatching(settings: Pick<SpineSettings, 'persistOn' | 'persistOverrides'>): boolean {
  return settings.persistOn !== 'immediate' || Object.values(settings.persistOverrides).some((mode) => mode !== 'immediate');
}

/** `host:port` (an emulator host setting) split; brackets around an IPv6 host are removed. */
export function splitHostPort(hostPort: string): { host: string; port: number } {
  const colon = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(hostPort.slice(colon + 1)) };
}
