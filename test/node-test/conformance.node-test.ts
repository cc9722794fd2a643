/**
 * The conformance suite under `node:test`, with no jest in the process:
 *     node --import tsx --test test/node-test/conformance.node-test.ts
 * test/unit/conformance-node-test.test.ts runs it and reads the result.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FileSystemStorage } from 'super-spine/filesystem';
import { MemoryStorage } from 'super-spine/memory';
import { runNetworkStorageConformance } from 'super-spine/testing';

const runner = { describe, it, beforeEach, afterEach };

runNetworkStorageConformance('MemoryStorage', async () => ({ storage: new MemoryStorage() }), runner);

runNetworkStorageConformance(
  'FileSystemStorage',
  async () => {
    const basePath = await mkdtemp(path.join(os.tmpdir(), 'spine-fs-node-test-'));
    return {
      storage: new FileSystemStorage({ basePath }),
      teardown: () => rm(basePath, { recursive: true, force: true }),
    };
  },
  runner,
);
