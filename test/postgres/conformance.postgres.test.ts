import { PostgresStorage } from '../../shared/backends/postgres';
import { runNetworkStorageConformance } from 'super-spine/testing';
import { createMemoryLogger } from '../helpers/emulators';
import { freshSchema, usePostgres } from '../helpers/postgres';
import { useStorageEmulator } from '../helpers/gcs';

const postgres = usePostgres();
const gcs = useStorageEmulator('pg-snapshots');

runNetworkStorageConformance('PostgresStorage', async () => ({
  storage: new PostgresStorage({ connectionString: postgres.url, poolSize: 4, logger: createMemoryLogger() }),
}));

// Snapshots in Cloud Storage (the Storage emulator), everything else in PostgreSQL.
runNetworkStorageConformance('PostgresStorage with snapshots in Cloud Storage', async () => ({
  storage: new PostgresStorage({
    connectionString: postgres.url,
    schema: freshSchema('gcs_snapshots'),
    poolSize: 4,
    snapshots: { bucket: 'pg-snapshots', prefix: 'pg/', storage: gcs.client },
    logger: createMemoryLogger(),
  }),
}));
