/**
 * Whole-group operations against contact writes under reorder on GcsStorage, against the
 * project's Storage emulator through the official client (see test/helpers/convergence.ts).
 */
import { GcsStorage } from 'super-spine/gcs';
import { createMemoryLogger } from '../helpers/emulators';
import { describeConvergence } from '../helpers/convergence';
import { freshPrefix, useStorageEmulator } from '../helpers/gcs';

process.env.METADATA_SERVER_DETECTION = 'none';

const BUCKET = `gcs-convergence-test-${process.pid}`;
const gcs = useStorageEmulator(BUCKET);

describeConvergence(
  'Cloud Storage',
  async () => {
    const storage = new GcsStorage({
      bucket: BUCKET,
      storage: gcs.client,
      prefix: freshPrefix('convergence'),
      logger: createMemoryLogger(),
    });
    await storage.initialize();
    return { storage, close: () => storage.close() };
  },
  { numRuns: 15, timeoutMs: 300_000 },
);
