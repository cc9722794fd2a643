/**
 * `createStorage(config)`: one factory for every backend, from one `StorageConfig` (the shape of
 * Bassline's storage design) validated once, with errors that name the field.
 */
import { z } from 'zod';
import { InvalidArgumentError } from './errors';
import type { NetworkStorage } from './model';
import { CachedStorage } from './backends/cached';
import { ScheduledPersistence } from './backends/scheduled-persistence';
import { openBackend, type BackendConfig } from './backends/open-backend';
import { parseSetting, SETTINGS } from './settings';

export const STORAGE_TYPES = ['memory', 'filesystem', 'postgres', 'gcs', 'mesh', 'remote'] as const;
export type StorageType = (typeof STORAGE_TYPES)[number];
/** The default folder of `type: 'filesystem'` when `options.basePath` is not given (the Super Spine disk plan). */
export const STORAGE_PATH_VARIABLE = SETTINGS.storagePath.variable;

const positiveMs = z
  .number()
  .int()
  .positive()
  .max(2 ** 31 - 1);
const id = z.string().min(1);

const cache = z.strictObject({
  enabled: z.boolean(),
  /** Milliseconds. */
  ttl: positiveMs.optional(),
  /** Entries. */
  maxSize: z.number().int().positive().optional(),
});

const persistence = z.strictObject({
  autoSave: z.boolean().optional(),
  /** Milliseconds between flushes (types `mesh` and `remote`). */
  saveInterval: positiveMs.optional(),
  /** Milliseconds between snapshots of the networks written meanwhile. */
  snapshotInterval: positiveMs.optional(),
});

const common = { cache: cache.optional(), persistence: persistence.optional() };

const schema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('memory'), options: z.strictObject({}).optional(), ...common }),
  z.strictObject({
    type: z.literal('filesystem'),
    options: z.strictObject({ basePath: id.optional(), fsync: z.boolean().optional() }).optional(),
    ...common,
  }),
  z.strictObject({
    type: z.literal('postgres'),
    options: z.strictObject({
      connectionString: z.string().regex(/^postgres(ql)?:\/\//, 'must start with postgresql:// or postgres://'),
      schema: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase SQL identifier')
        .optional(),
      poolSize: z.number().int().positive().max(1000).optional(),
    }),
    ...common,
  }),
  z.strictObject({
    type: z.literal('gcs'),
    options: z.strictObject({
      bucket: id,
      prefix: z.string().optional(),
      projectId: id.optional(),
      apiEndpoint: z.url().optional(),
    }),
    ...common,
  }),
  z.strictObject({
    type: z.literal('mesh'),
    /** The mesh's settings (what `npm start` writes to .spine/mesh.env); process.env by default. */
    options: z.strictObject({ env: z.record(z.string(), z.string()).optional(), writerId: id.optional() }).optional(),
    ...common,
  }),
  z.strictObject({
    type: z.literal('remote'),
    options: z.strictObject({ url: z.url({ protocol: /^https?$/ }), apiKey: id, timeoutMs: positiveMs.optional() }),
    ...common,
  }),
]);

export type StorageConfig = z.input<typeof schema>;
export type CacheConfig = z.input<typeof cache>;
export type PersistenceConfig = z.input<typeof persistence>;

/** The config checked against the schema and the rules across fields; throws InvalidArgumentError naming each bad field. */
export function validateStorageConfig(
  config: unknown,
  env: Record<string, string | undefined> = process.env,
): z.output<typeof schema> {
  if (
    !config ||
    typeof config !== 'object' ||
    typeof (config as { type?: unknown }).type !== 'string' ||
    !STORAGE_TYPES.includes((config as { type: StorageType }).type)
  ) {
    throw new InvalidArgumentError(
      `storage config: type must be one of ${STORAGE_TYPES.join(' | ')}, not ${JSON.stringify((config as { type?: unknown } | null)?.type)}`,
    );
  }
  const parsed = schema.safeParse(config);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (issue) => `${issue.path.length ? issue.path.join('.') : '(config)'}: ${issue.message}`,
    );
    throw new InvalidArgumentError(
      `storage config (type ${(config as { type: string }).type}) is invalid: ${issues.join('; ')}`,
    );
  }
  const valid = parsed.data;
  const fail = (field: string, message: string): never => {
    throw new InvalidArgumentError(`storage config (type ${valid.type}) is invalid: ${field}: ${message}`);
  };
  if (valid.type === 'filesystem' && !valid.options?.basePath && !parseSetting('storagePath', { env })) {
    fail('options.basePath', `required when ${STORAGE_PATH_VARIABLE} is not set`);
  }
  if (valid.cache && !valid.cache.enabled && (valid.cache.ttl !== undefined || valid.cache.maxSize !== undefined)) {
    fail('cache.enabled', 'is false, so ttl and maxSize would do nothing; enable the cache or leave them out');
  }
  const persist = valid.persistence;
  if (persist?.autoSave === true && valid.type === 'memory')
    fail('persistence.autoSave', "memory keeps nothing beyond the process; use type 'filesystem' to save");
  if (persist?.autoSave === false && valid.type !== 'memory')
    fail('persistence.autoSave', `${valid.type} saves every write as it is made and cannot be told not to`);
  if (persist?.saveInterval !== undefined && valid.type !== 'mesh' && valid.type !== 'remote') {
    fail(
      'persistence.saveInterval',
      `only types 'mesh' and 'remote' (a gateway on the mesh) have writes waiting to be saved (batch and interval persistence); ${valid.type} saves every write at once`,
    );
  }
  return valid;
}

type ValidConfig = z.output<typeof schema>;

/** A validated config (not `mesh`) as the backend switch takes it; the filesystem folder defaults to SUPER_SPINE_STORAGE_PATH. */
function backendConfig(
  valid: Exclude<ValidConfig, { type: 'mesh' }>,
  env: Record<string, string | undefined>,
): BackendConfig {
  switch (valid.type) {
    case 'memory':
      return { type: 'memory' };
    case 'filesystem':
      return {
        type: 'filesystem',
        basePath: valid.options?.basePath ?? parseSetting('storagePath', { env })!,
        ...(valid.options?.fsync !== undefined ? { fsync: valid.options.fsync } : {}),
      };
    case 'postgres':
      return { type: 'postgres', ...valid.options };
    case 'gcs': {
      const { bucket, prefix, projectId, apiEndpoint } = valid.options;
      return {
        type: 'gcs',
        bucket,
        ...(prefix ? { prefix } : {}),
        ...(projectId ? { projectId } : {}),
        ...(apiEndpoint ? { apiEndpoint } : {}),
      };
    }
    case 'remote':
      return { type: 'remote', ...valid.options };
  }
}

/**
 * The storage the config names, not yet initialized (call `initialize()`), wrapped in the read
 * cache when `cache.enabled` and in the persistence timers when `persistence` asks for them.
 * Backends that need an SDK load it only when chosen.
 */
export function createStorage(
  config: StorageConfig,
  env: Record<string, string | undefined> = process.env,
): NetworkStorage {
  const valid = validateStorageConfig(config, env);
  let storage: NetworkStorage;
  if (valid.type === 'mesh') {
    // The mesh client builds its own state store through the same switch (SPINE_STATE_STORE).
    const { SpineStorage } = require('./mesh/spine-storage') as typeof import('./mesh/spine-storage');
    storage = SpineStorage.fromEnv(
      valid.options?.env ?? env,
      valid.options?.writerId ? { writerId: valid.options.writerId } : {},
    );
  } else {
    storage = openBackend(backendConfig(valid, env));
  }
  if (valid.cache?.enabled) {
    storage = new CachedStorage(storage, {
      ...(valid.cache.ttl ? { ttl: valid.cache.ttl } : {}),
      ...(valid.cache.maxSize ? { maxSize: valid.cache.maxSize } : {}),
    });
  }
  const { saveInterval, snapshotInterval } = valid.persistence ?? {};
  if (saveInterval || snapshotInterval)
    storage = new ScheduledPersistence(storage, {
      ...(saveInterval ? { saveInterval } : {}),
      ...(snapshotInterval ? { snapshotInterval } : {}),
    });
  return storage;
}
