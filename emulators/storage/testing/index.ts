import type { Logger } from '../../../shared/log';
import type { StorageEmulator } from '../emulator';

/** A logger that drops everything, for tests that start emulators. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

/**
 * Options for `new Storage(...)` against the emulator. No credentials exist locally and none
 * are needed: with a custom endpoint the client skips authentication unless
 * `useAuthWithCustomEndpoint: true`, and with `projectId` given it never asks the metadata server.
 */
export function storageClientOptions(emulator: Pick<StorageEmulator, 'url'>, projectId = 'test-project') {
  return { apiEndpoint: emulator.url, projectId };
}
