import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileSystemStateStore, MemoryStateStore } from 'super-spine';
import { runStateStoreTests } from 'super-spine/testing';

runStateStoreTests('MemoryStateStore', async () => ({ store: new MemoryStateStore() }));

runStateStoreTests('FileSystemStateStore', async () => {
  const basePath = await mkdtemp(path.join(os.tmpdir(), 'spine-store-'));
  return {
    store: new FileSystemStateStore({ basePath, fsync: false }),
    sibling: () => new FileSystemStateStore({ basePath, fsync: false }),
    teardown: () => rm(basePath, { recursive: true, force: true }),
  };
});
