/**
 * `npm start` as a user runs it: a real process tree started with npm, stopped with the signal a
 * terminal's Ctrl-C sends to its foreground process group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { startPostgres } from '../../emulators/postgres';
import { SpineStorage } from '../../shared/mesh/spine-storage';
import { createMemoryLogger } from '../helpers/emulators';
import { parseEnvFile } from '../../cli/connection';
import { portPlan } from '../../cli/commands/dev';
import { isPortFree } from '../../emulators/ports';
import { freePortBase, plannedPorts } from '../helpers/dev-ports';
import { descendants, isRunning } from '../../cli/processes';

const ROOT = path.resolve(__dirname, '../..');

interface StartedDev {
  child: ChildProcess;
  output: () => string;
  /** npm's exit code, once every process holding its output has ended (null: npm ended by the signal). */
  exited: Promise<number | null>;
}

function startDev(args: string[], env: Record<string, string | undefined> = {}): StartedDev {
  // detached: its own process group, as a terminal's foreground job is.
  const child = spawn('npm', ['start', '--silent', '--', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (chunk) => (text += chunk));
  child.stderr!.on('data', (chunk) => (text += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

async function waitFor(dev: StartedDev, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = dev.output().match(pattern);
    if (match) return match;
    if (dev.child.exitCode !== null)
      throw new Error(`npm start exited (${dev.child.exitCode}) before ${pattern}:\n${dev.output()}`);
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${dev.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Ctrl-C: SIGINT to the whole process group. */
function pressCtrlC(dev: StartedDev): void {
  process.kill(-dev.child.pid!, 'SIGINT');
}

describe('npm start', () => {
  let dataDir: string;
  const running: StartedDev[] = [];

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'spine-dev-'));
  });
  afterEach(async () => {
    for (const dev of running.splice(0)) {
      try {
        process.kill(-dev.child.pid!, 'SIGKILL');
      } catch {
        // the whole group has ended
      }
      await dev.exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  const start = (args: string[], env?: Record<string, string | undefined>) => {
    const dev = startDev(args, env);
    running.push(dev);
    return dev;
  };

  test('runs the mesh and says so; a second start names who holds the ports; Ctrl-C leaves no process and frees every port', async () => {
    const base = await freePortBase();
    const dev = start(['--data-dir', dataDir, '--port-base', String(base)]);
    const [, seconds] = await waitFor(dev, /Super Spine mesh ready in ([\d.]+) s/);
    expect(Number(seconds)).toBeGreaterThan(0);
    await waitFor(dev, /Ctrl-C stops everything/);

    const env = parseEnvFile(await readFile(path.join(dataDir, 'mesh.env'), 'utf8'));
    for (const key of [
      'GOOGLE_CLOUD_PROJECT',
      'PUBSUB_EMULATOR_HOST',
      'STORAGE_EMULATOR_HOST',
      'CLOUD_TASKS_EMULATOR_HOST',
      'SPINE_BUCKET',
      'SPINE_TOPIC_PREFIX',
      'SPINE_FUNCTION_URLS',
    ]) {
      expect(env[key]).toBeTruthy();
    }
    expect(env.PUBSUB_EMULATOR_HOST).toBe(`127.0.0.1:${base}`);
    // The gateway answers on its planned port, and refuses a request without a key.
    expect(env.SPINE_GATEWAY_URL).toBe(`http://127.0.0.1:${portPlan(base).gateway}`);
    expect(
      (await fetch(`${env.SPINE_GATEWAY_URL}/v1/listNetworks`, { method: 'POST', body: '{"args":[]}' })).status,
    ).toBe(401);
    const client = SpineStorage.fromEnv(env);
    try {
      await client.saveContactContent(
        'dev-net',
        'g',
        'c',
        { hello: 'mesh' },
        { wait: 'materialized', timeoutMs: 30_000 },
      );
      expect(await client.loadContactContent('dev-net', 'g', 'c')).toEqual({ hello: 'mesh' });
    } finally {
      await client.close();
    }

    // The same ports again: refused, naming the mesh that holds them.
    const second = start(['--data-dir', path.join(dataDir, 'other'), '--port-base', String(base)]);
    expect(await second.exited).toBe(1);
    expect(second.output()).toMatch(
      new RegExp(
        `could not start the mesh: ports: ports ${base} \\(Pub/Sub emulator\\).* are taken by a running Super Spine mesh \\(spine dev, pid \\d+\\)`,
      ),
    );
    // The same data dir on other ports: refused, naming the running mesh.
    const third = start(['--data-dir', dataDir, '--port-base', '0']);
    expect(await third.exited).toBe(1);
    expect(third.output()).toMatch(/a Super Spine mesh \(pid \d+\) is already running on/);

    const tree = await descendants(dev.child.pid!);
    expect(tree.length).toBeGreaterThanOrEqual(3); // npm's shell, the dev process, Java, the functions
    pressCtrlC(dev);
    await dev.exited;
    expect(dev.output()).toMatch(/\nstopped\.\n/);
    const survivors = [];
    for (const pid of tree) if (await isRunning(pid)) survivors.push(pid);
    expect(survivors).toEqual([]);
    for (const port of plannedPorts(base)) expect(await isPortFree(port)).toBe(true);
  }, 120_000);

  test.each([
    ['immediate', {}],
    ['batch', { SPINE_PERSIST_ON: 'batch', SPINE_BATCH_WINDOW_MS: '600000' }],
  ])(
    'writes in flight at Ctrl-C are kept: the next start on the same data dir has all of them (%s persistence)',
    async (_mode, modeEnv) => {
      const base = await freePortBase();
      const first = start(['--data-dir', dataDir, '--port-base', String(base)], modeEnv);
      await waitFor(first, /Ctrl-C stops everything/);
      const env = parseEnvFile(await readFile(path.join(dataDir, 'mesh.env'), 'utf8'));
      const writer = SpineStorage.fromEnv(env);
      const count = 120;
      try {
        // Published (the client was told they are accepted), not waited for.
        await Promise.all(
          Array.from({ length: count }, (_, i) => writer.saveContactContent('inflight', `g${i % 12}`, `c${i}`, i)),
        );
      } finally {
        await writer.close();
      }
      pressCtrlC(first);
      await first.exited;
      expect(first.output()).toMatch(/\nstopped\.\n/);
      expect(first.output()).not.toMatch(/warning:/);

      const second = start(['--data-dir', dataDir, '--port-base', String(base)], modeEnv);
      await waitFor(second, /Ctrl-C stops everything/);
      const reader = SpineStorage.fromEnv(parseEnvFile(await readFile(path.join(dataDir, 'mesh.env'), 'utf8')));
      try {
        const state = await reader.loadNetworkState('inflight');
        const contacts = [...(state?.groups.values() ?? [])].flatMap((group) => [...group.contacts.values()]);
        expect(contacts.map((contact) => contact.content).sort((a, b) => Number(a) - Number(b))).toEqual(
          Array.from({ length: count }, (_, i) => i),
        );
      } finally {
        await reader.close();
      }
      pressCtrlC(second);
      await second.exited;
      expect(second.output()).toMatch(/\nstopped\.\n/);
    },
    150_000,
  );

  test('--postgres-url: the mesh materializes into PostgreSQL and mesh.env points clients at it', async () => {
    const postgres = await startPostgres({ logger: createMemoryLogger() });
    try {
      const dev = start(['--data-dir', dataDir, '--port-base', '0', '--postgres-url', postgres.url]);
      await waitFor(dev, /Ctrl-C stops everything/);
      expect(dev.output()).toMatch(/state in postgres/);
      const env = parseEnvFile(await readFile(path.join(dataDir, 'mesh.env'), 'utf8'));
      expect(env.SPINE_STATE_STORE).toBe('postgres');
      const client = SpineStorage.fromEnv(env);
      try {
        await client.saveContactContent('pg-net', 'g', 'c', 'in postgres', { wait: 'materialized', timeoutMs: 30_000 });
        expect(await client.loadContactContent('pg-net', 'g', 'c')).toBe('in postgres');
      } finally {
        await client.close();
      }
      // The row is in PostgreSQL, read with a plain SQL client.
      const sql = new Client({ connectionString: postgres.url });
      await sql.connect();
      try {
        const { rows } = await sql.query('SELECT count(*)::int AS n FROM spine.networks');
        expect(rows[0].n).toBeGreaterThanOrEqual(1);
      } finally {
        await sql.end();
      }
      pressCtrlC(dev);
      await dev.exited;
      expect(dev.output()).toMatch(/\nstopped\.\n/);
    } finally {
      await postgres.stop();
    }
  }, 120_000);

  test('a port held by another program: one line naming the part, the port and the program', async () => {
    const base = await freePortBase();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(portPlan(base).storage!, '127.0.0.1', resolve));
    try {
      const dev = start(['--data-dir', dataDir, '--port-base', String(base)]);
      expect(await dev.exited).toBe(1);
      const lines = dev.output().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `^spine dev: could not start the mesh: ports: port ${base + 1} \\(Storage emulator\\) is taken by pid ${process.pid} \\(`,
        ),
      );
    } finally {
      blocker.close();
    }
  }, 60_000);

  test('Java missing: one line naming the Pub/Sub emulator', async () => {
    // The launcher takes JAVA_HOME first: one without a java is a machine without Java for it.
    const dev = start(['--data-dir', dataDir, '--port-base', '0'], { JAVA_HOME: path.join(dataDir, 'no-java') });
    const code = await dev.exited;
    const lines = dev.output().trim().split('\n');
    expect(code).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^spine dev: could not start the mesh: emulators: Pub\/Sub emulator: .*[Jj]ava/);
  }, 60_000);

  test('a bad setting stops it before anything starts, naming the flag or the variable and the value', async () => {
    const badFlag = start(['--data-dir', dataDir, '--port-base', '80'], { SPINE_PORT_BASE: '0' });
    expect(await badFlag.exited).toBe(2);
    expect(badFlag.output()).toMatch(/^spine dev: invalid --port-base "80" \(setting SPINE_PORT_BASE\): expected 0/);
    const badLevel = start(['--data-dir', dataDir, '--port-base', '0'], { SPINE_LOG_LEVEL: 'chatty' });
    expect(await badLevel.exited).not.toBe(0);
    expect(badLevel.output()).toContain('setting SPINE_LOG_LEVEL="chatty" is invalid');
  }, 60_000);

  test('a function that throws at load: one line naming the functions and the cause', async () => {
    const dev = start(['--data-dir', dataDir, '--port-base', '0'], { SPINE_HEALTH_CANARY_DEADLINE_MS: 'soon' });
    const code = await dev.exited;
    const lines = dev.output().trim().split('\n');
    expect(code).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^spine dev: could not start the mesh: functions: .*SPINE_HEALTH_CANARY_DEADLINE_MS/);
  }, 60_000);
});
