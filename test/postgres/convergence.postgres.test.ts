/**
 * Whole-group operations against contact writes under reorder on PostgresStorage, against a
 * private PostgreSQL server (see test/helpers/convergence.ts).
 */
import { PostgresStorage } from 'super-spine/postgres';
import { createMemoryLogger } from '../helpers/emulators';
import { describeConvergence } from '../helpers/convergence';
import { freshSchema, usePostgres } from '../helpers/postgres';

const postgres = usePostgres();

describeConvergence(
  'PostgreSQL',
  async () => {
    const storage = new PostgresStorage({
      connectionString: postgres.url,
      schema: freshSchema('convergence'),
      poolSize: 2,
      logger: createMemoryLogger(),
    });
    await storage.initialize();
    return { storage, close: () => storage.close() };
  },
  { numRuns: 20, timeoutMs: 300_000 },
);
