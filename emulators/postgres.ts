import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { createLogger, type Logger } from '../shared/log';
import { parseSetting, SETTINGS } from '../shared/settings';
import { freePort, waitUntil } from './ports';
import { spawnProcessGroup, type ProcessGroup } from './pubsub/process-group';

const run = promisify(execFile);

/**
 * A private PostgreSQL server from the system's packages (Debian's `postgresql`), for tests,
 * benchmarks and `npm start`: its own data folder, a free port on 127.0.0.1, its Unix socket
 * inside the data folder, password-less (trust) login for the user `spine`.
 */
export interface StartPostgresOptions {
  /** Keep the cluster here between runs (created when missing); a fresh temporary folder, removed on stop, by default. */
  dataDir?: string;
  /** Port on 127.0.0.1; a free one by default. */
  port?: number;
  /** Database created for the caller (default `spine`). */
  database?: string;
  /**
   * Skip fsync and synchronous commit (default true for a temporary folder, false for `dataDir`):
   * much faster, and a crash of the machine may lose or corrupt the data.
   */
  unsafeFast?: boolean;
  /** Folder holding initdb and postgres; found under /usr/lib/postgresql/<version>/bin or on the PATH by default (SPINE_POSTGRES_BIN overrides). */
  binDir?: string;
  /** Connections the server accepts (default 300: tests run many pools at once). */
  maxConnections?: number;
  logger?: Logger;
}

export interface LocalPostgres {
  /** `postgresql://spine@127.0.0.1:<port>/<database>`. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Fast shutdown (open sessions are ended); removes a temporary data folder. */
  stop(): Promise<void>;
}

export class PostgresNotInstalledError extends Error {
  constructor(detail: string) {
    super(
      `PostgreSQL is not installed (${detail}): install Debian's package (apt-get install postgresql, or npm test, which runs scripts/install-system-deps.sh), or set SPINE_POSTGRES_BIN to the folder holding initdb and postgres`,
    );
    this.name = 'PostgresNotInstalledError';
  }
}

/** The folder of `initdb` and `postgres`: SPINE_POSTGRES_BIN, the newest /usr/lib/postgresql/N/bin, or the PATH. */
export function findPostgresBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const candidates: string[] = [];
  const fromSetting = parseSetting('postgresBin', { env });
  if (fromSetting) candidates.push(fromSetting);
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => path.join(debian, v, 'bin')));
  }
  candidates.push(...(env.PATH ?? '').split(path.delimiter).filter(Boolean));
  const found = candidates.find(
    (dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres')),
  );
  if (!found)
    throw new PostgresNotInstalledError(
      fromSetting
        ? `no initdb and postgres in ${SETTINGS.postgresBin.variable}=${fromSetting}`
        : 'no initdb and postgres under /usr/lib/postgresql or on the PATH',
    );
  return found;
}

/** How to run the server's programs: PostgreSQL refuses to run as root, so as root they run as the `postgres` user. */
async function runAs(): Promise<{ prefix: string[]; uid: number; gid: number } | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  let ids: { stdout: string };
  try {
    ids = await run('id', ['-u', 'postgres']);
  } catch {
    throw new Error(
      'running as root, and PostgreSQL refuses to: there is no "postgres" user to run it as (Debian\'s postgresql package creates one)',
    );
  }
  const uid = Number(ids.stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  return { prefix: ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--'], uid, gid };
}

/** As `runAs`, and the server is SIGKILLed by the kernel if this process dies without stopping it (setpriv sets that after changing the user). */
function withParentDeathSignal(prefix: string[]): string[] {
  return [...prefix.slice(0, -1), '--pdeathsig', 'SIGKILL', '--'];
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<LocalPostgres> {
  const log = options.logger ?? createLogger('postgres');
  const binDir = options.binDir ?? findPostgresBinDir();
  const temporary = options.dataDir === undefined;
  const root = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'spine-postgres-')));
  const dataDir = path.join(root, 'data');
  const socketDir = root;
  const database = options.database ?? 'spine';
  const unsafeFast = options.unsafeFast ?? temporary;
  const user = await runAs();
  let server: ProcessGroup | undefined;
  try {
    await mkdir(root, { recursive: true });
    if (user) await chown(root, user.uid, user.gid);
    const command = (program: string) =>
      user ? [...user.prefix, path.join(binDir, program)] : [path.join(binDir, program)];
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      const [file, ...args] = command('initdb');
      await run(file!, [
        ...args,
        '-D',
        dataDir,
        '-U',
        'spine',
        '--auth=trust',
        '--encoding=UTF8',
        '--locale=C',
        ...(unsafeFast ? ['--no-sync'] : []),
      ]).catch((error: { stderr?: string; message: string }) => {
        throw new Error(`initdb failed: ${error.stderr?.trim() || error.message}`);
      });
    }
    const port = options.port ?? (await freePort());
    const settings = [
      `listen_addresses=127.0.0.1`,
      `unix_socket_directories=${socketDir}`,
      `max_connections=${options.maxConnections ?? 300}`,
      ...(unsafeFast ? ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'] : []),
    ];
    const postgresBinary = path.join(binDir, 'postgres');
    const [file, ...args] = user ? [...withParentDeathSignal(user.prefix), postgresBinary] : [postgresBinary];
    server = await spawnProcessGroup(
      file!,
      [...args, '-D', dataDir, '-p', String(port), ...settings.flatMap((s) => ['-c', s])],
      {
        env: { ...process.env, LC_ALL: 'C' },
        logger: log.child({ part: 'postgres' }),
        // Not running as root, setpriv wraps the server the same way here.
        killWithParent: !user,
      },
    );
    const running = server;
    await waitUntil(
      async () => {
        if (running.exitStatus()) throw new Error(`postgres exited at start: ${running.outputTail()}`);
        return canConnect(port);
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `PostgreSQL on port ${port}` },
    );
    const admin = new Client({ host: '127.0.0.1', port, user: 'spine', database: 'postgres' });
    await admin.connect();
    try {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      // A database name cannot be a parameter; this one is quoted as an identifier.
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
    } finally {
      await admin.end();
    }
    log.info('PostgreSQL ready', { port, dataDir });
    return {
      url: `postgresql://spine@127.0.0.1:${port}/${encodeURIComponent(database)}`,
      port,
      dataDir,
      async stop() {
        await running.stop(10_000);
        if (temporary) await rm(root, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await server?.stop(5_000).catch(() => undefined);
    if (temporary) await rm(root, { recursive: true, force: true });
    throw error;
  }
}

async function canConnect(port: number): Promise<boolean> {
  const client = new Client({
    host: '127.0.0.1',
    port,
    user: 'spine',
    database: 'postgres',
    connectionTimeoutMillis: 1_000,
  });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}
