/**
 * A local Cloud Storage (JSON API) emulator for the official `@google-cloud/storage` client.
 *
 * ```ts
 * const emulator = await startStorageEmulator({ dataDir: '.data/storage' }); // port 0 = any free port
 * const storage = new Storage({ apiEndpoint: emulator.url, projectId: 'local' });
 * ...
 * emulator.stats().writesByObject['bucket/name']; // committed writes per object (also GET /_emulator/stats)
 * await emulator.stop();
 * ```
 *
 * Or as a process: `npx tsx emulators/storage/main.ts --port 4443 --data-dir .data/storage`.
 */
export { startStorageEmulator, type StorageEmulator, type StorageEmulatorStatsSnapshot } from './emulator';
export {
  StorageEmulatorSettingError,
  DEFAULT_HOST as STORAGE_EMULATOR_DEFAULT_HOST,
  ENV as STORAGE_EMULATOR_ENV,
  type StorageEmulatorOptions,
} from './options';
export {
  SERVICE_OBJECT_RATE_LIMIT as STORAGE_SERVICE_OBJECT_RATE_LIMIT,
  type ObjectRateLimit as StorageObjectRateLimit,
} from './rate-limit';
export type { StorageEmulatorStats } from './stats';
export type { ObjectWriteKind as StorageObjectWriteKind } from './state';
