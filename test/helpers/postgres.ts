import { randomUUID } from 'node:crypto';
import type { LocalPostgres } from '../../emulators/postgres';
import { createMemoryLogger } from './emulators';

export interface PostgresHandle {
  /** The running server; only inside tests (after beforeAll). */
  readonly server: LocalPostgres;
  /** Its connection string. */
  readonly url: string;
  /** Stops it and removes its folder (what afterAll does unless `stopInAfterAll: false`). */
  stop(): Promise<void>;
}

/**
 * Starts a private PostgreSQL server (a fresh cluster in a temporary folder, a free port) in
 * `beforeAll` of the calling suite and stops it, removing the folder, in `afterAll`. Register
 * it before hooks that use it. Jest runs afterAll hooks in the order they were registered, so
 * a suite whose later hooks still need the server (a mesh that drains into it on stop) passes
 * `stopInAfterAll: false` and registers `afterAll(() => handle.stop())` after them. Reading the
 * handle before `beforeAll` has run throws.
 */
export function usePostgres({ stopInAfterAll = true } = {}): PostgresHandle {
  let server: LocalPostgres | undefined;

  beforeAll(async () => {
    const { startPostgres } = await import('../../emulators/postgres');
    server = await startPostgres({ logger: createMemoryLogger() });
  }, 60_000);

  const stop = async () => {
    await server?.stop();
    server = undefined;
  };
  if (stopInAfterAll) afterAll(stop, 30_000);

  const running = () => {
    if (!server) throw new Error('usePostgres: the server is only available inside tests (after beforeAll)');
    return server;
  };
  return {
    get server() {
      return running();
    },
    get url() {
      return running().url;
    },
    stop,
  };
}

/** A schema name no other test uses. */
export const freshSchema = (label = 'test') => `${label}_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
