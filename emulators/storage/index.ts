export { startStorageEmulator, type StorageEmulator, type StorageEmulatorStatsSnapshot } from './emulator';
export {
  parseCommandLine,
  resolveOptions,
  StorageEmulatorSettingError,
  DEFAULT_HOST,
  ENV as STORAGE_EMULATOR_ENV,
  type StorageEmulatorOptions,
  type ResolvedStorageEmulatorOptions,
} from './options';
export { StorageError, type StorageErrorBody, type StorageErrorReason } from './errors';
export { SERVICE_OBJECT_RATE_LIMIT, type ObjectRateLimit } from './rate-limit';
export type { StorageEmulatorStats } from './stats';
export type { ObjectWriteKind } from './state';
