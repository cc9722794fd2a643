export * from './model';
export * from './errors';
export { encode, decode, encodeToBuffer, clone, canonicalize, deepEqual, type EncodeOptions } from './codec';
export * from './ids';
export * from './hlc';
export * from './mergeable';
export * from './blend';
export { groupMatches, AUTHOR_ATTRIBUTE, TYPE_ATTRIBUTE, TAGS_ATTRIBUTE } from './query';
export { DEFAULT_MAX_CONTENT_BYTES, checkContent, validateGroupState, validateNetworkState } from './state-validation';
export { newSnapshotId } from './snapshot-id';
export { createLogger, type Logger, type Severity } from './log';
export * from './events';
export {
  DocumentStorage,
  emptyGroupState,
  type DocumentStorageOptions,
  type DocumentStorageParts,
} from './backends/document-storage';
export type { StateStore, NetworkRecord, GroupRecord, AtomicUnit, SnapshotWrite } from './backends/state-store';
export {
  StoreMaterializer,
  type Materializer,
  type ContactWriteEntry,
  type NetworkSaveOutcome,
  type StoreMaterializerOptions,
  type WriteLocks,
} from './backends/materializer';
export { StoreSnapshotter, type Snapshotter, type StoreSnapshotterOptions } from './backends/snapshotter';
export { StoreStateReader, type StateReader } from './backends/state-reader';
export type { MaterializedState, SnapshotRunState } from './backends/materialized-state';
export { MemoryStateStore } from './backends/memory-store';
export { FileSystemStateStore } from './backends/filesystem-store';
export { MemoryStorage } from './backends/memory';
export { FileSystemStorage, type FileSystemStorageOptions } from './backends/filesystem';
export {
  PostgresStorage,
  PostgresStateStore,
  postgresStorageFromSettings,
  cloudSqlIamAuth,
  type PostgresStorageOptions,
  type GcsSnapshotOptions,
} from './backends/postgres';
export {
  GcsStorage,
  GcsStateStore,
  type GcsStorageOptions,
  type GcsStateStoreOptions,
  type GcsStoreCounters,
  type RetryOptions,
} from './backends/gcs';
export {
  SpineStorage,
  type SpineStorageOptions,
  type SpineWriteOptions,
  type SpineStorageStats,
} from './mesh/spine-storage';
export { DEFAULT_BUNDLING, type BundlingOptions } from './mesh/write-bundler';
export { DeadLetterStore, DeadLetterNotFoundError, type DeadLetter } from './mesh/dead-letters';
export { ContentStore, ContentMissingError, MAX_INLINE_CONTENT_BYTES } from './mesh/content-store';
export { ChangePublisher, type Change } from './mesh/change-publisher';
export { createPubSubClient, createStorageClient } from './mesh/clients';
export * from './topology';
export {
  provisionTopology,
  subscriptionMetadata,
  pushEndpoint,
  type ProvisionClients,
  type ProvisionOptions,
  type ProvisionReport,
} from './provision';
export {
  loadSettings,
  persistModeFor,
  DEFAULT_PROJECT_ID,
  PERSIST_MODES,
  STATE_STORES,
  type SpineSettings,
  type PersistOn,
  type StateStoreKind,
} from './settings';
export { POSTGRES_SNAPSHOT_STORES, type PostgresSnapshotStore } from './settings';
export {
  parseSettings,
  SettingError,
  SETTINGS,
  type SettingsOf,
  type SettingsSource,
  type Component as SettingsComponent,
} from './settings';
export { openBackend, type BackendConfig, type StateStoreConfig } from './backends/open-backend';
export * from './system';
export * from './health';
export {
  takeScheduledSnapshots,
  slotSnapshotId,
  type SnapshotSelection,
  type ScheduledSnapshotOptions,
  type SnapshotRunSummary,
} from './snapshots';
export { RemoteStorage, type RemoteStorageOptions } from './backends/remote';
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
