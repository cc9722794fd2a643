import type { Storage } from '@google-cloud/storage';
import type { SpineSettings } from '../settings';
import type { DocumentStorage } from './document-storage';
import { FileSystemStorage } from './filesystem';
import { GcsStorage } from './gcs';
import { postgresStorageFromSettings } from './postgres/settings';

/**
 * The state store the settings name (SPINE_STATE_STORE and its settings): where the functions
 * materialize and where clients of the mesh read. One definition for the functions, `SpineStorage.fromEnv`
 * and the tests' mesh clients.
 */
export function stateStoreFromSettings(settings: SpineSettings, options: { storage?: Storage; writerId?: string } = {}): DocumentStorage {
  const writer = options.writerId ? { writerId: options.writerId } : {};
  switch (settings.stateStore) {
    case 'postgres':
      return postgresStorageFromSettings(settings, options);
    case 'filesystem':
      return new FileSystemStorage({ basePath: settings.statePath!, ...writer });
    case 'gcs':
      return new GcsStorage({ bucket: settings.bucket, prefix: settings.statePrefix, ...(options.storage ? { storage: options.storage } : {}), ...writer });
  }
}
