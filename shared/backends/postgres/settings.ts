import type { Storage } from '@google-cloud/storage';
import type { SpineSettings } from '../../settings';
import { stateStoreFromSettings } from '../from-settings';
import type { PostgresStorage } from './storage';

/**
 * The `postgres` state store as the settings describe it (SPINE_POSTGRES_*), for the functions
 * and for clients that read what they materialize. Snapshots in `gcs` mode go to SPINE_BUCKET
 * under SPINE_STATE_PREFIX, through `storage`.
 * @internal The functions' and the CLI's PostgresStorage from SPINE_* settings; users construct PostgresStorage.
 */
export function postgresStorageFromSettings(
  settings: SpineSettings,
  options: { storage?: Storage; writerId?: string } = {},
): PostgresStorage {
  return stateStoreFromSettings({ ...settings, stateStore: 'postgres' }, options) as PostgresStorage;
}
