import type { Logger } from '../../shared/log';
import type { StorageEmulator } from './emulator';

/** A logger that drops everything, for tests that start emulators. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

/**
 * Options for `new Storage(...)` against the emulator. No credentials exist locally: with a
 * custom endpoint the client skips authentication unless `useAuthWithCustomEndpoint` is set,
 * and it never probes the metadata server when `projectId` is given.
 */
export function storageClientOptions(emulator: Pick<StorageEmulator, 'url'>, projectId = 'test-project') {
  return { apiEndpoint: emulator.url, projectId };
}
