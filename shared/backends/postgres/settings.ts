import type { Storage } from '@google-cloud/storage';
import type { SpineSettings } from '../../settings';
import { InvalidArgumentError } from '../../errors';
import { PostgresStorage } from './storage';

/**
 * The `postgres` state store as the settings describe it (SPINE_POSTGRES_*), for the functions
 * and for clients that read what they materialize. Snapshots in `gcs` mode go to SPINE_BUCKET
 * under SPINE_STATE_PREFIX, through `storage`.
 */
export function postgresStorageFromSettings(settings: SpineSettings, options: { storage?: Storage; writerId?: string } = {}): PostgresStorage {
  if (!settings.postgresUrl) throw new InvalidArgumentError('setting SPINE_POSTGRES_URL is required when SPINE_STATE_STORE=postgres');
  return new PostgresStorage({
    connectionString: settings.postgresUrl,
    schema: settings.postgresSchema,
    poolSize: settings.postgresPoolSize,
    snapshots: settings.postgresSnapshots === 'gcs' ? { bucket: settings.bucket, prefix: settings.statePrefix, ...(options.storage ? { storage: options.storage } : {}) } : 'database',
    iamAuth: settings.postgresIamAuth,
    grantTo: settings.postgresGrantTo,
    ...(options.writerId ? { writerId: options.writerId } : {}),
  });
}
