import { GcsStateStore } from 'super-spine/gcs';
import { runStateStoreTests } from 'super-spine/testing';
import { createMemoryLogger } from '../helpers/emulators';
import { emulatorClient, freshPrefix, useStorageEmulator } from '../helpers/gcs';

const BUCKET = `gcs-state-store-${process.pid}`;
const gcs = useStorageEmulator(BUCKET);

runStateStoreTests('GcsStateStore on the Storage emulator', async () => {
  const prefix = freshPrefix('state-store');
  const store = (client = gcs.client) =>
    new GcsStateStore({ bucket: BUCKET, prefix, storage: client, logger: createMemoryLogger() });
  // The sibling has a client of its own, as another process would.
  return { store: store(), sibling: () => store(emulatorClient(gcs.emulator)) };
});
