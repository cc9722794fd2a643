/**
 * `super-spine`: what a program storing Bassline networks needs, without any cloud SDK. The
 * `NetworkStorage` contract and its model, typed errors and mergeable values; the embedded
 * backends (memory, filesystem); `createStorage`, which loads the backend it is asked for (and
 * only then its SDK); the events the mesh carries. The backends with an SDK of their own live
 * behind subpaths: `super-spine/gcs`, `/postgres`, `/mesh`, `/remote`; helpers for tests in
 * `/testing`, the local emulators in `/emulators`. The project's own functions, CLI and gateway
 * import its modules directly, not this entry.
 *
 * @packageDocumentation
 */
export * from './entry/contract';
export { MemoryStorage } from './backends/memory';
export { MemoryStateStore } from './backends/memory-store';
export { FileSystemStorage, type FileSystemStorageOptions } from './backends/filesystem';
export { FileSystemStateStore } from './backends/filesystem-store';
export {
  createStorage,
  validateStorageConfig,
  STORAGE_TYPES,
  STORAGE_PATH_VARIABLE,
  type StorageConfig,
  type StorageType,
  type CacheConfig,
  type PersistenceConfig,
} from './create-storage';
export { CachedStorage, type ReadCacheOptions, type ReadCacheStats } from './backends/cached';
export { ScheduledPersistence, type ScheduledPersistenceOptions } from './backends/scheduled-persistence';
export { DelegatingStorage } from './backends/delegating';
// The options of the backends behind subpaths, so a `StorageConfig` can be typed without loading them.
export type { GcsStorageOptions } from './backends/gcs';
export type { PostgresStorageOptions } from './backends/postgres';
export type { SpineStorageOptions, SpineWriteOptions } from './mesh/spine-storage';
export type { RemoteStorageOptions } from './backends/remote';
export { AUTHOR_ATTRIBUTE, TYPE_ATTRIBUTE, TAGS_ATTRIBUTE } from './query';
export type { Logger, Severity } from './log';
export * from './events/types';
export { createEvent, validateEvent, type CreateEventOptions } from './events/schema';
export { SettingError } from './settings/error';
export type { PersistOn, StateStoreKind } from './settings/table';
