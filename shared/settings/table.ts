/**
 * Every setting of Super Spine, defined once: environment variable, command-line flag, default,
 * parser and one line of description, and the parts that read it. `parseSettings` (parse.ts)
 * reads a part's slice from argv and env; the README's settings tables are generated from here
 * (`npm run docs:settings`). Adding a setting is adding one entry.
 */
import { isBucketName } from '../bucket-name';
import { MAX_BUNDLED_WRITES } from '../events/types';
import { FUNCTION_NAMES, type FunctionName } from '../function-names';
import { DEFAULT_BUNDLING, MAX_BUNDLE_BYTES, MAX_LINGER_MS } from '../mesh/write-bundler';
import { DEFAULT_OFFLINE_AFTER_MS } from '../system';
import { expected } from './error';
import {
  commaList,
  digits,
  jsonObject,
  matching,
  oneOf,
  onOrOff,
  port,
  positive,
  text,
  trueOrFalse,
  truthy,
  wholeMinutesMs,
  wholeNumber,
  type ValueParser,
} from './values';

/** The parts of the project that read settings; each asks the parser for its own slice. */
export const COMPONENTS = [
  'library',
  'functions',
  'health',
  'gateway',
  'cli',
  'dev',
  'emulators',
  'storage-emulator',
  'tasks-emulator',
] as const;
export type Component = (typeof COMPONENTS)[number];

export interface SettingSpec<T> {
  /** The environment variable. */
  variable: string;
  /** Further variables read, in order, when `variable` is unset. */
  alsoFrom?: readonly string[];
  /** The command-line flag (without `--`) of the programs that take one. */
  flag?: string;
  /** What the flag's value is, in usage lines (`DIR`). */
  flagArgument?: string;
  /** The flag takes no value: given, it means `true`. */
  flagIsSwitch?: boolean;
  /** The value when the setting is not given; a function of the settings read before it. */
  default?: T | ((earlier: Readonly<Record<string, unknown>>) => T);
  /** The default as the README shows it, where it is computed or left to the program. */
  shownDefault?: string;
  parse: ValueParser<T>;
  /** One line for the README. */
  description: string;
  components: readonly Component[];
  /** An empty value is a value (a prefix may be empty; the emulators pass "" on and refuse it). Otherwise empty = unset. */
  emptyIsValue?: boolean;
  /** Never shown in an error (may hold a password). */
  secret?: boolean;
  /** Required when the test holds for the settings read before it; `expected` says so. */
  requiredWhen?: { test(earlier: Readonly<Record<string, unknown>>): boolean; expected: string };
}

export type PersistOn = 'immediate' | 'batch' | 'interval' | 'manual';
export const PERSIST_MODES: readonly PersistOn[] = ['immediate', 'batch', 'interval', 'manual'];
export type StateStoreKind = 'gcs' | 'filesystem' | 'postgres';
export const STATE_STORES: readonly StateStoreKind[] = ['gcs', 'filesystem', 'postgres'];
/** Where PostgresStorage keeps snapshots: in its own tables, or as objects in SPINE_BUCKET. */
export type PostgresSnapshotStore = 'database' | 'gcs';
export const POSTGRES_SNAPSHOT_STORES: readonly PostgresSnapshotStore[] = ['database', 'gcs'];

export const DEFAULT_PROJECT_ID = 'spine-local';
export type LogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'SILENT';
export const LOG_LEVELS: readonly LogLevel[] = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'SILENT'];
/** `spine dev`'s fixed port plan starts here (see portBase). */
export const DEFAULT_PORT_BASE = 8085;
/** The port plan takes the base and the next 4 + one per function + 1 (the gateway). */
const HIGHEST_PORT_BASE = 65_535 - 5 - FUNCTION_NAMES.length;
export const DEFAULT_CANARY_DEADLINE_MS = 10_000;
export const DEFAULT_MAX_BATCH_AGE_MS = 10 * 60 * 1000;
/** The canary must end well inside the health function's timeout (120 s). */
export const MAX_CANARY_DEADLINE_MS = 100_000;

const HOST_PORT = /^[^\s/:]+:\d{1,5}$/;
const persistMode = oneOf(PERSIST_MODES);

export const SETTINGS = {
  // ---- the library: SpineStorage.fromEnv, and through it the functions, the gateway and the CLI
  projectId: {
    variable: 'GOOGLE_CLOUD_PROJECT',
    alsoFrom: ['GCLOUD_PROJECT', 'PUBSUB_PROJECT_ID'],
    flag: 'project',
    flagArgument: 'ID',
    default: DEFAULT_PROJECT_ID,
    parse: matching(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a project id (6-30 lowercase letters, digits, hyphens)'),
    description: 'project of the mesh (else `GCLOUD_PROJECT`, `PUBSUB_PROJECT_ID`)',
    components: ['library', 'cli', 'dev'],
  },
  topicPrefix: {
    variable: 'SPINE_TOPIC_PREFIX',
    flag: 'prefix',
    flagArgument: 'P',
    default: 'spine-',
    parse: (raw: string) =>
      raw === ''
        ? raw
        : matching(
            /^[a-z][a-z0-9-]{0,30}$/,
            'lowercase letters, digits and hyphens, starting with a letter, at most 31 characters',
          )(raw),
    description: 'prefix of every topic, subscription, queue and job name, so deployments can share a project',
    components: ['library', 'cli', 'dev'],
    emptyIsValue: true,
  },
  bucket: {
    variable: 'SPINE_BUCKET',
    flag: 'bucket',
    flagArgument: 'NAME',
    default: (earlier: Readonly<Record<string, unknown>>) => `${String(earlier.projectId)}-spine-state`,
    shownDefault: '`<project>-spine-state`',
    parse: (raw: string) =>
      isBucketName(raw)
        ? raw
        : expected(
            'a bucket name (3-63 lowercase letters, digits, dots, hyphens, underscores; up to 222 in dot-separated parts)',
          ),
    description: 'bucket of the materialized state, large content, dead letters, snapshots and key records',
    components: ['library', 'cli'],
  },
  statePrefix: {
    variable: 'SPINE_STATE_PREFIX',
    default: '',
    shownDefault: '(none)',
    parse: (raw: string) =>
      raw === '' || (raw.endsWith('/') && !raw.startsWith('/') && !raw.includes('..'))
        ? raw
        : expected('a relative object prefix ending in "/"'),
    description: 'prefix of the state objects inside the bucket',
    components: ['library'],
    emptyIsValue: true,
  },
  persistOn: {
    variable: 'SPINE_PERSIST_ON',
    default: 'immediate' as PersistOn,
    parse: persistMode,
    description: 'when writes are materialized: `immediate`, `batch`, `interval` or `manual`',
    components: ['library'],
  },
  persistOverrides: {
    variable: 'SPINE_PERSIST_OVERRIDES',
    default: {} as Record<string, PersistOn>,
    shownDefault: '`{}`',
    parse: jsonObject('a JSON object of network id to persistence mode', (mode, networkId) =>
      PERSIST_MODES.includes(mode as PersistOn)
        ? (mode as PersistOn)
        : expected(`a mode (${PERSIST_MODES.join(' | ')}) for network ${networkId}`),
    ),
    description: 'per-network exceptions to `SPINE_PERSIST_ON`, e.g. `{"net":"batch"}`',
    components: ['library'],
  },
  functionUrls: {
    variable: 'SPINE_FUNCTION_URLS',
    default: {} as Partial<Record<string, string>>,
    shownDefault: '`{}`',
    parse: jsonObject<string>('a JSON object of function name to URL'),
    description:
      'base URL of each function (Cloud Tasks need absolute targets; `spine health` calls the health function)',
    components: ['library'],
  },
  stateStore: {
    variable: 'SPINE_STATE_STORE',
    default: 'gcs' as StateStoreKind,
    parse: oneOf(STATE_STORES),
    description: 'where the functions materialize state and clients read it: `gcs`, `filesystem` or `postgres`',
    components: ['library'],
  },
  statePath: {
    variable: 'SPINE_STATE_PATH',
    parse: text,
    description: 'folder of the `filesystem` state store',
    components: ['library'],
    requiredWhen: {
      test: (earlier: Readonly<Record<string, unknown>>) => earlier.stateStore === 'filesystem',
      expected: 'a folder, required when SPINE_STATE_STORE=filesystem',
    },
  },
  postgresUrl: {
    variable: 'SPINE_POSTGRES_URL',
    flag: 'postgres-url',
    flagArgument: 'URL',
    parse: matching(/^postgres(ql)?:\/\//, 'a connection string starting with postgresql:// or postgres://'),
    description:
      'connection string of the `postgres` state store; required with it (never printed in errors); `spine dev` materializes into it',
    components: ['library', 'dev'],
    secret: true,
    requiredWhen: {
      test: (earlier: Readonly<Record<string, unknown>>) => earlier.stateStore === 'postgres',
      expected:
        'a PostgreSQL connection string (postgresql://user@host:port/database), required when SPINE_STATE_STORE=postgres',
    },
  },
  postgresSchema: {
    variable: 'SPINE_POSTGRES_SCHEMA',
    default: 'spine',
    parse: matching(
      /^[a-z_][a-z0-9_]{0,62}$/,
      'a lowercase SQL identifier (letters, digits, underscores, at most 63, not starting with a digit)',
    ),
    description: "schema of the `postgres` store's tables",
    components: ['library'],
  },
  postgresPoolSize: {
    variable: 'SPINE_POSTGRES_POOL_SIZE',
    default: 10,
    parse: positive('a positive whole number of connections'),
    description: 'connections per process to PostgreSQL',
    components: ['library'],
  },
  postgresSnapshots: {
    variable: 'SPINE_POSTGRES_SNAPSHOTS',
    default: 'database' as PostgresSnapshotStore,
    parse: oneOf(POSTGRES_SNAPSHOT_STORES),
    description: '`database`, or `gcs` (objects in `SPINE_BUCKET` under `SPINE_STATE_PREFIX`)',
    components: ['library'],
  },
  postgresIamAuth: {
    variable: 'SPINE_POSTGRES_IAM_AUTH',
    default: false,
    parse: trueOrFalse,
    description: '`true`: Cloud SQL IAM database authentication (a Google access token as the password)',
    components: ['library'],
  },
  postgresGrantTo: {
    variable: 'SPINE_POSTGRES_GRANT_TO',
    default: [] as string[],
    shownDefault: '(none)',
    parse: commaList(
      (role) => Buffer.byteLength(role) <= 63 && !/[\u0000-\u001f\u007f]/.test(role),
      'comma-separated role names of at most 63 bytes',
    ),
    description:
      "comma-separated roles the migrating user grants read and write on the tables (`grantTo`): the other functions' IAM users",
    components: ['library'],
  },
  tasksLocation: {
    variable: 'SPINE_TASKS_LOCATION',
    default: 'us-central1',
    parse: text,
    description: 'location of the Cloud Tasks queues',
    components: ['library'],
  },
  batchWindowMs: {
    variable: 'SPINE_BATCH_WINDOW_MS',
    default: 1_000,
    parse: positive(),
    description: 'length of a `batch` window in milliseconds: one write per group per window',
    components: ['library'],
  },
  intervalMs: {
    variable: 'SPINE_INTERVAL_MS',
    default: 60_000,
    parse: wholeMinutesMs,
    description: 'period of the `interval` flush job in milliseconds (whole minutes dividing an hour or a day)',
    components: ['library'],
  },
  maxSnapshots: {
    variable: 'SPINE_MAX_SNAPSHOTS',
    default: 24,
    parse: positive('a positive whole number of snapshots'),
    description: 'unlabelled snapshots kept per network by the snapshot function (newest first)',
    components: ['library'],
  },
  bundleMaxWrites: {
    variable: 'SPINE_BUNDLE_MAX_WRITES',
    default: DEFAULT_BUNDLING.maxWrites,
    parse: wholeNumber(1, MAX_BUNDLED_WRITES, 'writes'),
    description: 'writes to one group a writer bundles into one event while a publish is in flight (1: each alone)',
    components: ['library'],
  },
  bundleMaxBytes: {
    variable: 'SPINE_BUNDLE_MAX_BYTES',
    default: DEFAULT_BUNDLING.maxBytes,
    parse: wholeNumber(1024, MAX_BUNDLE_BYTES, 'bytes'),
    description: 'encoded size at which a bundle is sent',
    components: ['library'],
  },
  bundleLingerMs: {
    variable: 'SPINE_BUNDLE_LINGER_MS',
    default: DEFAULT_BUNDLING.lingerMs,
    parse: wholeNumber(0, MAX_LINGER_MS, 'milliseconds'),
    description: 'how long a bundle waits for more writes',
    components: ['library'],
  },
  pubsubEmulatorHost: {
    variable: 'PUBSUB_EMULATOR_HOST',
    parse: matching(HOST_PORT, 'host:port'),
    description: '`host:port` of the Pub/Sub emulator (a deployment on Google Cloud leaves it unset)',
    components: ['library'],
  },
  storageEmulatorHost: {
    variable: 'STORAGE_EMULATOR_HOST',
    parse: (raw: string) => matching(/^https?:\/\/[^\s/]+(:\d+)?\/?$/, 'http://host:port')(raw).replace(/\/$/, ''),
    description: '`http://host:port` of the Storage emulator',
    components: ['library'],
  },
  tasksEmulatorHost: {
    variable: 'CLOUD_TASKS_EMULATOR_HOST',
    parse: matching(HOST_PORT, 'host:port'),
    description: '`host:port` of the Tasks emulator',
    components: ['library'],
  },
  storagePath: {
    variable: 'SUPER_SPINE_STORAGE_PATH',
    parse: text,
    description: "folder of `createStorage({ type: 'filesystem' })` when `options.basePath` is not given",
    components: ['library'],
  },
  logLevel: {
    variable: 'SPINE_LOG_LEVEL',
    default: 'INFO' as LogLevel,
    parse: (raw: string) => oneOf(LOG_LEVELS)(raw.toUpperCase()),
    description:
      'least severity logged: `DEBUG`, `INFO`, `WARNING`, `ERROR` or `SILENT` (any case); the CLI defaults to `WARNING`',
    components: ['library', 'emulators'],
  },

  // ---- the functions
  pubsubJournalHost: {
    variable: 'SPINE_PUBSUB_JOURNAL_HOST',
    parse: matching(HOST_PORT, 'host:port'),
    description:
      "`host:port` of the local mesh's journaling Pub/Sub pass-through: the functions publish pending copies and pull them through it, everything else straight to PUBSUB_EMULATOR_HOST (set by `spine dev`)",
    components: ['functions'],
  },
  tasksServiceAccount: {
    variable: 'SPINE_TASKS_SERVICE_ACCOUNT',
    parse: text,
    description: 'service account whose OIDC token Cloud Tasks send to the persist and snapshot functions',
    components: ['functions'],
  },
  functionPorts: {
    variable: 'SPINE_FUNCTION_PORTS',
    default: {} as Partial<Record<FunctionName, number>>,
    shownDefault: 'free ports',
    parse: jsonObject('a JSON object of function name to port', (value, name) => {
      if (!FUNCTION_NAMES.includes(name as FunctionName))
        expected(`a JSON object of function name (${FUNCTION_NAMES.join(', ')}) to port, not ${name}`);
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65_535)
        expected(`a port from 0 to 65535 for ${name}`);
      return value as number;
    }) as ValueParser<Partial<Record<FunctionName, number>>>,
    description: 'ports of the functions host (`functions/main.ts`), e.g. `{"materialize":8090}`',
    components: ['functions'],
  },
  pruneLabelledSnapshots: {
    variable: 'SPINE_PRUNE_LABELLED_SNAPSHOTS',
    default: false,
    parse: trueOrFalse,
    description: "the snapshot function's retention deletes labelled snapshots too",
    components: ['functions'],
  },

  // ---- the health function
  canaryDeadlineMs: {
    variable: 'SPINE_HEALTH_CANARY_DEADLINE_MS',
    default: DEFAULT_CANARY_DEADLINE_MS,
    parse: digits(1, MAX_CANARY_DEADLINE_MS),
    description: 'how long the canary write may take to be materialized and announced',
    components: ['health'],
  },
  offlineAfterMs: {
    variable: 'SPINE_HEALTH_OFFLINE_AFTER_MS',
    default: DEFAULT_OFFLINE_AFTER_MS,
    parse: digits(1),
    description: 'an agent without a heartbeat this long is offline',
    components: ['health'],
  },
  maxDeadLetters: {
    variable: 'SPINE_HEALTH_MAX_DEAD_LETTERS',
    parse: digits(0),
    shownDefault: '(unset: dead letters only warn)',
    description: 'more dead letters than this make the mesh unhealthy',
    components: ['health'],
  },
  maxBatchAgeMs: {
    variable: 'SPINE_HEALTH_MAX_BATCH_AGE_MS',
    default: DEFAULT_MAX_BATCH_AGE_MS,
    parse: digits(1),
    description: 'a pending batch older than this makes the mesh unhealthy',
    components: ['health'],
  },

  // ---- the gateway
  gatewayPort: {
    variable: 'PORT',
    default: 8080,
    parse: wholeNumber(0, 65535),
    description: 'port of the gateway (Cloud Run sets it)',
    components: ['gateway'],
  },
  gatewayHost: {
    variable: 'SPINE_GATEWAY_HOST',
    default: '127.0.0.1',
    parse: text,
    description: 'interface the gateway listens on',
    components: ['gateway'],
  },
  maxBodyBytes: {
    variable: 'SPINE_GATEWAY_MAX_BODY_BYTES',
    default: 1024 * 1024,
    parse: wholeNumber(1024, 32 * 1024 * 1024, 'bytes'),
    description: 'largest request body (413 above)',
    components: ['gateway'],
  },
  keyCacheMs: {
    variable: 'SPINE_GATEWAY_KEY_CACHE_MS',
    default: 5_000,
    parse: wholeNumber(1, 300_000, 'milliseconds'),
    description: 'how long a key record is believed: a revoked key may be honoured this long',
    components: ['gateway'],
  },
  maxBufferedBytes: {
    variable: 'SPINE_GATEWAY_MAX_BUFFERED_BYTES',
    default: 1024 * 1024,
    parse: wholeNumber(16 * 1024, 256 * 1024 * 1024, 'bytes'),
    description: 'bytes waiting on one WebSocket before it is closed as a slow consumer (4008)',
    components: ['gateway'],
  },
  maxSubscriptionsPerSocket: {
    variable: 'SPINE_GATEWAY_MAX_SUBSCRIPTIONS_PER_SOCKET',
    default: 100,
    parse: wholeNumber(1, 100_000, 'subscriptions'),
    description: 'subscriptions one WebSocket may hold',
    components: ['gateway'],
  },
  maxSubscriptionsPerKey: {
    variable: 'SPINE_GATEWAY_MAX_SUBSCRIPTIONS_PER_KEY',
    default: 1_000,
    parse: wholeNumber(1, 1_000_000, 'subscriptions'),
    description: 'subscriptions all sockets of one key may hold together',
    components: ['gateway'],
  },
  maxSubscriptions: {
    variable: 'SPINE_GATEWAY_MAX_SUBSCRIPTIONS',
    default: 20_000,
    parse: wholeNumber(1, 10_000_000, 'subscriptions'),
    description: 'subscriptions of the whole gateway (they cost its memory, not Pub/Sub)',
    components: ['gateway'],
  },
  maxWatchedNetworks: {
    variable: 'SPINE_GATEWAY_MAX_WATCHED_NETWORKS',
    default: 200,
    parse: wholeNumber(1, 100_000, 'networks'),
    description: 'storage (Pub/Sub) subscriptions, one per network watched',
    components: ['gateway'],
  },
  maxNetworksPerKey: {
    variable: 'SPINE_GATEWAY_MAX_NETWORKS_PER_KEY',
    default: 50,
    parse: wholeNumber(1, 100_000, 'networks'),
    description: "networks one key's subscriptions may span",
    components: ['gateway'],
  },
  unknownKeyCacheMs: {
    variable: 'SPINE_GATEWAY_UNKNOWN_KEY_CACHE_MS',
    default: 60_000,
    parse: wholeNumber(1, 3_600_000, 'milliseconds'),
    description: 'how long an id without a key record is refused without a read',
    components: ['gateway'],
  },
  keyLookupsPerSecond: {
    variable: 'SPINE_GATEWAY_KEY_LOOKUPS_PER_SECOND',
    default: 10,
    parse: wholeNumber(1, 100_000, 'lookups per second'),
    description: 'key-record reads (cache misses) one client address may cause per second (429 above)',
    components: ['gateway'],
  },
  bodyTimeoutMs: {
    variable: 'SPINE_GATEWAY_BODY_TIMEOUT_MS',
    default: 15_000,
    parse: wholeNumber(100, 600_000, 'milliseconds'),
    description: 'a request body must have arrived this long after the headers, else 408',
    components: ['gateway'],
  },

  // ---- the spine CLI
  dataDir: {
    variable: 'SPINE_DATA_DIR',
    flag: 'data-dir',
    flagArgument: 'DIR',
    default: '.spine',
    parse: text,
    description:
      'where `npm start` keeps its state and writes `mesh.env` and `mesh.log`; the CLI reads `mesh.env` after flags and environment',
    components: ['cli', 'dev'],
  },
  debug: {
    variable: 'SPINE_DEBUG',
    default: false,
    shownDefault: 'off',
    parse: onOrOff,
    description: 'errors are printed with their stack trace; `1`, `true`, `yes`, `on` (or `0`, `false`, `no`, `off`)',
    components: ['cli'],
  },

  // ---- spine dev (npm start), with the project, prefix, PostgreSQL URL and data dir above
  portBase: {
    variable: 'SPINE_PORT_BASE',
    flag: 'port-base',
    flagArgument: 'N',
    default: DEFAULT_PORT_BASE,
    parse: (raw: string) => {
      const base = Number(raw);
      if (!/^\d+$/.test(raw) || (base !== 0 && (base < 1024 || base > HIGHEST_PORT_BASE)))
        expected(`0 (any free ports) or a whole number from 1024 to ${HIGHEST_PORT_BASE}`);
      return base;
    },
    description:
      'Pub/Sub on N, Storage N+1, Tasks N+2, dashboard N+3, functions N+4…N+8, gateway N+9; 0 = any free ports',
    components: ['dev'],
  },
  dashboardToken: {
    variable: 'SPINE_DASHBOARD_TOKEN',
    shownDefault: 'random per start',
    parse: matching(/^[A-Za-z0-9_-]{16,200}$/, '16 to 200 letters, digits, "-" or "_"'),
    description: "token of the dashboard's API (in the URL `npm start` prints)",
    components: ['dev'],
    secret: true,
  },

  // ---- npm run emulators
  emulatorsProject: {
    variable: 'SPINE_EMULATORS_PROJECT',
    flag: 'project',
    default: DEFAULT_PROJECT_ID,
    parse: matching(/^[a-z][a-z0-9-]*$/, 'lower-case letters, digits and hyphens'),
    description: 'project id the emulators and clients use',
    components: ['emulators'],
    emptyIsValue: true,
  },
  emulatorsDataDir: {
    variable: 'SPINE_EMULATORS_DATA_DIR',
    flag: 'data-dir',
    shownDefault: 'memory',
    parse: text,
    description: 'folder where the storage emulator keeps objects',
    components: ['emulators'],
    emptyIsValue: true,
  },
  pubsubPort: {
    variable: 'SPINE_PUBSUB_PORT',
    flag: 'pubsub-port',
    default: 0,
    shownDefault: 'a free port',
    parse: port(),
    description: 'Pub/Sub emulator port',
    components: ['emulators'],
    emptyIsValue: true,
  },
  storagePort: {
    variable: 'SPINE_STORAGE_PORT',
    flag: 'storage-port',
    default: 0,
    shownDefault: 'a free port',
    parse: port(),
    description: 'Cloud Storage emulator port',
    components: ['emulators'],
    emptyIsValue: true,
  },
  tasksPort: {
    variable: 'SPINE_TASKS_PORT',
    flag: 'tasks-port',
    default: 0,
    shownDefault: 'a free port',
    parse: port(),
    description: 'Cloud Tasks emulator port',
    components: ['emulators'],
    emptyIsValue: true,
  },
  pubsubEmulatorLauncher: {
    variable: 'SPINE_PUBSUB_EMULATOR',
    shownDefault: "the Cloud SDK's",
    parse: text,
    description:
      'launcher of the Pub/Sub emulator (`<sdk root>/platform/pubsub-emulator/bin/cloud-pubsub-emulator`); else found through `gcloud`',
    components: ['emulators', 'dev'],
  },
  postgresBin: {
    variable: 'SPINE_POSTGRES_BIN',
    shownDefault: '`/usr/lib/postgresql/<newest>/bin`, else the PATH',
    parse: text,
    description: 'folder holding `initdb` and `postgres` for the local PostgreSQL of the tests and benchmarks',
    components: ['emulators'],
  },

  // ---- the Storage emulator alone (emulators/storage/main.ts); defaults applied by startStorageEmulator
  storageEmulatorListenHost: {
    variable: 'STORAGE_EMULATOR_LISTEN_HOST',
    flag: 'host',
    shownDefault: '`127.0.0.1`',
    parse: text,
    description: 'interface the Storage emulator listens on',
    components: ['storage-emulator'],
    emptyIsValue: true,
  },
  storageEmulatorPort: {
    variable: 'STORAGE_EMULATOR_PORT',
    flag: 'port',
    shownDefault: 'a free port',
    parse: port('an integer from 0 to 65535'),
    description: 'port of the Storage emulator',
    components: ['storage-emulator'],
    emptyIsValue: true,
  },
  storageEmulatorDataDir: {
    variable: 'STORAGE_EMULATOR_DATA_DIR',
    flag: 'data-dir',
    shownDefault: 'memory',
    parse: text,
    description: 'folder where the Storage emulator keeps its state across restarts',
    components: ['storage-emulator'],
    emptyIsValue: true,
  },
  storageEmulatorObjectRateLimit: {
    variable: 'STORAGE_EMULATOR_OBJECT_RATE_LIMIT',
    flag: 'object-rate-limit',
    flagIsSwitch: true,
    shownDefault: 'off',
    parse: truthy,
    description: "simulate the service's one write per second per object name (429); `1`, `true`, `yes`, `on`",
    components: ['storage-emulator'],
  },

  // ---- the Tasks emulator alone (emulators/tasks/main.ts)
  tasksEmulatorListenHost: {
    variable: 'CLOUD_TASKS_EMULATOR_LISTEN_HOST',
    flag: 'host',
    default: '127.0.0.1',
    parse: (raw: string) => (raw.trim() === '' ? expected('a host, not empty') : raw),
    description: 'interface the Tasks emulator listens on',
    components: ['tasks-emulator'],
    emptyIsValue: true,
  },
  tasksEmulatorPort: {
    variable: 'CLOUD_TASKS_EMULATOR_PORT',
    flag: 'port',
    default: 0,
    shownDefault: 'a free port',
    parse: port('an integer in [0, 65535]'),
    description: 'port of the Tasks emulator (gRPC and REST)',
    components: ['tasks-emulator'],
    emptyIsValue: true,
  },
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each row has a value type of its own
} as const satisfies Record<string, SettingSpec<any>>;

export type SettingsTable = typeof SETTINGS;
export type SettingName = keyof SettingsTable;
