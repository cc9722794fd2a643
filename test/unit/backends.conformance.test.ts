import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileSystemStorage, MemoryStorage } from 'super-spine';
import { runNetworkStorageConformance } from 'super-spine/testing';

runNetworkStorageConformance('MemoryStorage', async () => ({ storage: new MemoryStorage() }));

runNetworkStorageConformance('FileSystemStorage', async () => {
  const basePath = await mkdtemp(path.join(os.tmpdir(), 'spine-fs-'));
  return {
    storage: new FileSystemStorage({ basePath }),
    teardown: () => rm(basePath, { recursive: true, force: true }),
  };
});
