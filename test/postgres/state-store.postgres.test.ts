import { PostgresStateStore } from '../../shared/backends/postgres';
import { runStateStoreTests } from 'super-spine/testing';
import { createMemoryLogger } from '../helpers/emulators';
import { useStorageEmulator } from '../helpers/gcs';
import { freshSchema, usePostgres } from '../helpers/postgres';
import { GcsStateStore } from '../../shared/backends/gcs';

const postgres = usePostgres();
const gcs = useStorageEmulator('pg-store-snapshots');

runStateStoreTests('PostgresStateStore', async () => {
  const schema = freshSchema('store');
  const store = () =>
    new PostgresStateStore({ connectionString: postgres.url, schema, poolSize: 4, logger: createMemoryLogger() });
  return { store: store(), sibling: store, transactional: true };
});

runStateStoreTests('PostgresStateStore with snapshots in Cloud Storage', async () => {
  const schema = freshSchema('store_gcs');
  const snapshots = () =>
    new GcsStateStore({
      bucket: 'pg-store-snapshots',
      prefix: `${schema}/`,
      storage: gcs.client,
      logger: createMemoryLogger(),
    });
  const store = () =>
    new PostgresStateStore({
      connectionString: postgres.url,
      schema,
      poolSize: 4,
      snapshots: snapshots(),
      logger: createMemoryLogger(),
    });
  return { store: store(), sibling: store, transactional: true };
});
