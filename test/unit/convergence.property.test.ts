import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileSystemStorage, MemoryStorage } from 'super-spine';
import { createMemoryLogger } from '../helpers/emulators';
import { describeConvergence } from '../helpers/convergence';

describeConvergence(
  'memory',
  async () => {
    const storage = new MemoryStorage({ logger: createMemoryLogger() });
    await storage.initialize();
    return { storage, close: () => storage.close() };
  },
  { numRuns: 300, timeoutMs: 120_000 },
);

describeConvergence(
  'filesystem',
  async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spine-convergence-'));
    const storage = new FileSystemStorage({ basePath: dir, fsync: false, logger: createMemoryLogger() });
    await storage.initialize();
    return {
      storage,
      close: async () => {
        await storage.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  { numRuns: 40, timeoutMs: 180_000 },
);
