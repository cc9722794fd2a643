/** Where the jest environment (jest-environment.ts) leaves the client module for tests. */
export const STORAGE_CLIENT_GLOBAL = '__superSpineStorageClientModule';

type StorageClientModule = typeof import('@google-cloud/storage');

/**
 * The official `@google-cloud/storage` module: the one the storage jest environment loaded
 * outside the vm when tests run under it, otherwise a plain `require` (scripts, benchmarks).
 */
export function storageClientModule(): StorageClientModule {
  const provided = (globalThis as Record<string, unknown>)[STORAGE_CLIENT_GLOBAL];
  if (provided) return provided as StorageClientModule;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@google-cloud/storage') as StorageClientModule;
}
