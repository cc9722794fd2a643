import { parseSettings, type Env, type SettingsOf } from './parse';
import type { BundlingLimits } from '../mesh/write-bundler';
import type { PersistOn, PostgresSnapshotStore, StateStoreKind } from './table';

/**
 * The public face of the settings: `loadSettings(env)` (the library's slice, as `SpineSettings`)
 * and the table, parser and error every part reads its settings through.
 */
export { SettingError } from './error';
export {
  parseSetting,
  parseSettings,
  readFlags,
  settingNames,
  type Env,
  type SettingsOf,
  type SettingsSource,
} from './parse';
export {
  COMPONENTS,
  DEFAULT_PORT_BASE,
  DEFAULT_PROJECT_ID,
  LOG_LEVELS,
  PERSIST_MODES,
  POSTGRES_SNAPSHOT_STORES,
  SETTINGS,
  STATE_STORES,
  type Component,
  type LogLevel,
  type PersistOn,
  type PostgresSnapshotStore,
  type SettingName,
  type SettingSpec,
  type StateStoreKind,
} from './table';
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

/** The library's settings from the environment (pure, so tests inject `env`); a bad one throws a SettingError naming it. */
export function loadSettings(env: Env = process.env): SpineSettings {
  return spineSettings(parseSettings('library', { env }));
}

/** The library's slice as `SpineSettings` (the shape the rest of the code holds). */
export function spineSettings(values: SettingsOf<'library'>): SpineSettings {
  const {
    bundleMaxWrites,
    bundleMaxBytes,
    bundleLingerMs,
    statePath,
    postgresUrl,
    pubsubEmulatorHost,
    storageEmulatorHost,
    tasksEmulatorHost,
    storagePath: _storagePath,
    logLevel: _logLevel,
    ...rest
  } = values;
  return {
    ...rest,
    ...(statePath ? { statePath } : {}),
    ...(postgresUrl ? { postgresUrl } : {}),
    bundling: { maxWrites: bundleMaxWrites, maxBytes: bundleMaxBytes, lingerMs: bundleLingerMs },
    ...(pubsubEmulatorHost ? { pubsubEmulatorHost } : {}),
    ...(storageEmulatorHost ? { storageEmulatorHost } : {}),
    ...(tasksEmulatorHost ? { tasksEmulatorHost } : {}),
  };
}
/** The persistence mode of one network: its override, or the deployment's. */
export function persistModeFor(
  settings: Pick<SpineSettings, 'persistOn' | 'persistOverrides'>,
  networkId: string,
): PersistOn {
  return settings.persistOverrides[networkId] ?? settings.persistOn;
}

/** True when any network's writes wait in the pending buffer for the persist function. */
export function usesBatching(settings: Pick<SpineSettings, 'persistOn' | 'persistOverrides'>): boolean {
  return (
    settings.persistOn !== 'immediate' || Object.values(settings.persistOverrides).some((mode) => mode !== 'immediate')
  );
}

/** `host:port` (an emulator host setting) split; brackets around an IPv6 host are removed. */
export function splitHostPort(hostPort: string): { host: string; port: number } {
  const colon = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(hostPort.slice(colon + 1)) };
}
