/**
 * The one backend switch: a validated backend config in, a storage out. `createStorage`,
 * `SpineStorage.fromEnv` (through `stateStoreFromSettings`), the functions' runtime and the CLI
 * all build their backend here. Backends that need an SDK or a driver are loaded only when
 * chosen, so the memory and filesystem entries load no cloud SDK.
 */
import type { NetworkStorage } from '../model';
import type { DocumentStorage, DocumentStorageOptions } from './document-storage';
import type { FileSystemStorageOptions } from './filesystem';
import type { GcsStorageOptions } from './gcs';
import type { PostgresStorageOptions } from './postgres/storage';
import type { RemoteStorageOptions } from './remote';

/** The backends that hold materialized state themselves (a `DocumentStorage`). */
export type StateStoreConfig =
  | ({ type: 'memory' } & DocumentStorageOptions)
  | ({ type: 'filesystem' } & FileSystemStorageOptions)
  | ({ type: 'postgres' } & PostgresStorageOptions)
  | ({
      type: 'gcs';
      /** Without `storage`: the client is made for this project and endpoint (`autoRetry: false`, GcsStorage retries itself). */
      projectId?: string;
      apiEndpoint?: string;
    } & GcsStorageOptions);

export type BackendConfig = StateStoreConfig | ({ type: 'remote' } & RemoteStorageOptions);

export function openBackend(config: StateStoreConfig): DocumentStorage;
export function openBackend(config: BackendConfig): NetworkStorage;
export function openBackend(config: BackendConfig): NetworkStorage {
  switch (config.type) {
    case 'memory': {
      const { type: _type, ...options } = config;
      const { MemoryStorage } = require('./memory') as typeof import('./memory');
      return new MemoryStorage(options);
    }
    case 'filesystem': {
      const { type: _type, ...options } = config;
      const { FileSystemStorage } = require('./filesystem') as typeof import('./filesystem');
      return new FileSystemStorage(options);
    }
    case 'postgres': {
      const { type: _type, ...options } = config;
      const { PostgresStorage } = require('./postgres/storage') as typeof import('./postgres/storage');
      return new PostgresStorage(options);
    }
    case 'gcs': {
      const { type: _type, projectId, apiEndpoint, ...options } = config;
      const { GcsStorage } = require('./gcs') as typeof import('./gcs');
      if (!options.storage && (projectId || apiEndpoint)) {
        const { Storage } = require('@google-cloud/storage') as typeof import('@google-cloud/storage');
        options.storage = new Storage({
          ...(projectId ? { projectId } : {}),
          ...(apiEndpoint ? { apiEndpoint } : {}),
          retryOptions: { autoRetry: false },
        });
      }
      return new GcsStorage(options);
    }
    case 'remote': {
      const { type: _type, ...options } = config;
      const { RemoteStorage } = require('./remote') as typeof import('./remote');
      return new RemoteStorage(options);
    }
  }
}
