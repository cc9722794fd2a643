/** `super-spine/remote`: the mesh through a gateway with an API key; loads `ws`, no cloud SDK. */
export * from './contract';
export { RemoteStorage, type RemoteStorageOptions } from '../backends/remote';
export {
  createStorage,
  validateStorageConfig,
  STORAGE_TYPES,
  STORAGE_PATH_VARIABLE,
  type StorageConfig,
  type StorageType,
  type CacheConfig,
  type PersistenceConfig,
} from '../create-storage';
export { CachedStorage, type ReadCacheOptions, type ReadCacheStats } from '../backends/cached';
