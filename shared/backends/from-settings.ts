import type { Storage } from '@google-cloud/storage';
import { InvalidArgumentError } from '../errors';
import type { SpineSettings } from '../settings';
import type { DocumentStorage } from './document-storage';
import { openBackend, type StateStoreConfig } from './open-backend';

export interface StateStoreOptions {
  /** The Storage client of the process (for `gcs`, and `postgres` snapshots in `gcs` mode). */
  storage?: Storage;
  writerId?: string;
}

/**
 * The backend config of the state store the settings name (SPINE_STATE_STORE and its settings):
 * where the functions materialize and where clients of the mesh read.
 */
export function stateStoreConfig(settings: SpineSettings, options: StateStoreOptions = {}): StateStoreConfig {
  const writer = options.writerId ? { writerId: options.writerId } : {};
  switch (settings.stateStore) {
    case 'postgres':
      if (!settings.postgresUrl)
        throw new InvalidArgumentError('setting SPINE_POSTGRES_URL is required when SPINE_STATE_STORE=postgres');
      return {
        type: 'postgres',
        connectionString: settings.postgresUrl,
        schema: settings.postgresSchema,
        poolSize: settings.postgresPoolSize,
        snapshots:
          settings.postgresSnapshots === 'gcs'
            ? {
                bucket: settings.bucket,
                prefix: settings.statePrefix,
                ...(options.storage ? { storage: options.storage } : {}),
              }
            : 'database',
        iamAuth: settings.postgresIamAuth,
        grantTo: settings.postgresGrantTo,
        ...writer,
      };
    case 'filesystem':
      return { type: 'filesystem', basePath: settings.statePath!, ...writer };
    case 'gcs':
      return {
        type: 'gcs',
        bucket: settings.bucket,
        prefix: settings.statePrefix,
        ...(options.storage ? { storage: options.storage } : {}),
        ...writer,
      };
  }
}

/**
 * The state store the settings name, built by the one backend switch. One definition for the
 * functions, `SpineStorage.fromEnv`, the CLI and the tests' mesh clients.
 */
export function stateStoreFromSettings(settings: SpineSettings, options: StateStoreOptions = {}): DocumentStorage {
  return openBackend(stateStoreConfig(settings, options));
}
