/**
 * The local mesh loses nothing it acknowledged: `npm start` as real processes, crashed in every
 * way a laptop crashes it (the functions SIGKILLed, `spine dev` SIGKILLed, the whole process
 * group SIGKILLed, Ctrl-C while a writer keeps writing) and fed a poison message. Each case
 * counts the writes whose publish resolved, starts the mesh again on the same data dir when it
 * died, and asserts every acknowledged write materialized exactly once and a fresh write and the
 * health canary still go through.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PubSub } from '@google-cloud/pubsub';
import { parseEnvFile } from '../../cli/connection';
import { commandLine, descendants, isRunning } from '../../cli/processes';
import { allPortsFree, freePortBase } from '../helpers/dev-ports';
import { growArray, type GrowArray } from '../../shared/mergeable';
import { SpineStorage } from '../../shared/mesh/spine-storage';

const ROOT = path.resolve(__dirname, '../..');
const GROUPS = 8;
const WRITE_PAUSE_MS = 100;

interface StartedDev {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startDev(dataDir: string, base: number, env: Record<string, string> = {}): StartedDev {
  const child = spawn('npm', ['start', '--silent', '--', '--data-dir', dataDir, '--port-base', String(base)], {
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

async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 90_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

async function ready(dev: StartedDev): Promise<void> {
  await until('the mesh ready', () => {
    if (dev.child.exitCode !== null) throw new Error(`npm start exited (${dev.child.exitCode}):\n${dev.output()}`);
    return /Ctrl-C stops everything/.test(dev.output()) || undefined;
  });
}

/** The pid of the first process below `root` whose command line matches. */
async function findBelow(root: number, pattern: RegExp): Promise<number> {
  return until(
    `a process matching ${pattern}`,
    async () => {
      for (const pid of await descendants(root)) if (pattern.test(await commandLine(pid))) return pid;
      return undefined;
    },
    10_000,
  );
}

/**
 * Writes `growArray([i])` merges to one `log` contact per group, `inFlight` at a time, each loop
 * pausing `WRITE_PAUSE_MS` after a write, until stopped; records the writes whose publish resolved
 * (acknowledged by the mesh). Paced so that a 15 s outage piles up a few thousand writes, not
 * tens of thousands: one grow array of that many items is what replays take longest over.
 */
function startWriter(env: Record<string, string>, network: string, inFlight = 16) {
  const writer = SpineStorage.fromEnv(env);
  const acknowledged = new Set<number>();
  let issued = 0;
  let stopped = false;
  const loops = Array.from({ length: inFlight }, async () => {
    while (!stopped) {
      const i = issued++;
      try {
        await writer.saveContactContent(network, `g${i % GROUPS}`, 'log', growArray([i]), { blendMode: 'merge' });
        acknowledged.add(i);
        await new Promise((resolve) => setTimeout(resolve, WRITE_PAUSE_MS));
      } catch {
        // not acknowledged: the mesh is down or stopping
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });
  return {
    acknowledged,
    issued: () => issued,
    /** Stops issuing; writes still unresolved after `graceMs` count as not acknowledged. */
    async stop(graceMs = 3_000) {
      stopped = true;
      await Promise.race([Promise.all(loops), new Promise((resolve) => setTimeout(resolve, graceMs))]);
      const snapshot = new Set(acknowledged);
      void writer.close().catch(() => undefined);
      return snapshot;
    },
  };
}

/** Every element of every group's log, read from the state. */
async function materializedItems(reader: SpineStorage, network: string): Promise<number[]> {
  const items: number[] = [];
  for (let group = 0; group < GROUPS; group++) {
    const content = (await reader.loadContactContent(network, `g${group}`, 'log')) as GrowArray<number> | null;
    if (content) items.push(...content.items);
  }
  return items;
}

/** Every acknowledged write materialized, none twice, none that was never issued. */
async function expectAllMaterializedOnce(
  env: Record<string, string>,
  network: string,
  acknowledged: Set<number>,
  issued: number,
): Promise<void> {
  const reader = SpineStorage.fromEnv(env);
  try {
    const items = await until(
      `all ${acknowledged.size} acknowledged writes materialized`,
      async () => {
        const seen = await materializedItems(reader, network);
        const present = new Set(seen);
        return [...acknowledged].every((i) => present.has(i)) ? seen : undefined;
      },
      120_000,
      500,
    ).catch(async (error: Error) => {
      const present = new Set(await materializedItems(reader, network));
      const lost = [...acknowledged].filter((i) => !present.has(i));
      throw new Error(`${error.message}: ${lost.length} of ${acknowledged.size} acknowledged writes lost`);
    });
    expect(items.length).toBe(new Set(items).size);
    expect(items.every((i) => Number.isInteger(i) && i >= 0 && i < issued)).toBe(true);
  } finally {
    await reader.close();
  }
}

/**
 * Every acknowledged write is in the event archive (the archiver's objects, read through `history`):
 * a write counts as done only once archived too, so a crash before the archiver wrote it replays it.
 */
async function expectAllArchived(
  env: Record<string, string>,
  network: string,
  acknowledged: Set<number>,
): Promise<void> {
  const reader = SpineStorage.fromEnv(env);
  const archivedItems = async () => {
    const archived = new Set<number>();
    let cursor: string | undefined;
    do {
      const page = await reader.history(network, undefined, undefined, { limit: 1_000, ...(cursor ? { cursor } : {}) });
      for (const entry of page.entries)
        if (entry.kind === 'contact-write') for (const i of (entry.content as GrowArray<number>).items) archived.add(i);
      cursor = page.cursor;
    } while (cursor);
    return archived;
  };
  try {
    await until(
      `all ${acknowledged.size} acknowledged writes archived`,
      async () => {
        const archived = await archivedItems();
        return [...acknowledged].every((i) => archived.has(i)) || undefined;
      },
      60_000,
      1_000,
    ).catch(async (error: Error) => {
      const archived = await archivedItems();
      const missing = [...acknowledged].filter((i) => !archived.has(i));
      throw new Error(`${error.message}: ${missing.length} of ${acknowledged.size} acknowledged writes not archived`);
    });
  } finally {
    await reader.close();
  }
}

/** A fresh write and the health canary still materialize. */
async function expectFlowing(env: Record<string, string>, network: string): Promise<void> {
  const client = SpineStorage.fromEnv(env);
  try {
    await client.saveContactContent(network, 'after', 'fresh', 'still flowing', {
      wait: 'materialized',
      timeoutMs: 60_000,
    });
    expect(await client.loadContactContent(network, 'after', 'fresh')).toBe('still flowing');
  } finally {
    await client.close();
  }
  const urls = JSON.parse(env.SPINE_FUNCTION_URLS!) as Record<string, string>;
  const health = await until(
    'a healthy canary',
    async () => {
      const response = await fetch(urls.health!, { signal: AbortSignal.timeout(60_000) });
      const report = (await response.json()) as { checks: { canary: { ok: boolean } } };
      return report.checks.canary.ok ? report : undefined;
    },
    90_000,
    1_000,
  );
  expect(health.checks.canary.ok).toBe(true);
}

async function meshEnv(dataDir: string): Promise<Record<string, string>> {
  return parseEnvFile(await readFile(path.join(dataDir, 'mesh.env'), 'utf8')) as Record<string, string>;
}

/** Waits until every process of the tree has ended and every planned port is free again. */
async function gone(tree: number[], base: number): Promise<void> {
  await until(
    'the crashed mesh gone',
    async () => {
      for (const pid of tree) if (await isRunning(pid)) return undefined;
      return (await allPortsFree(base)) || undefined;
    },
    30_000,
  );
}

describe('npm start loses no acknowledged write', () => {
  let dataDir: string;
  const running: StartedDev[] = [];

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'spine-durable-'));
  });
  afterEach(async () => {
    for (const dev of running.splice(0)) {
      try {
        process.kill(-dev.child.pid!, 'SIGINT');
      } catch {
        // already gone
      }
      const stopped = await Promise.race([
        dev.exited.then(() => true),
        new Promise((resolve) => setTimeout(() => resolve(false), 30_000)),
      ]);
      if (!stopped) {
        try {
          process.kill(-dev.child.pid!, 'SIGKILL');
        } catch {
          // gone
        }
        await dev.exited;
      }
    }
    await rm(dataDir, { recursive: true, force: true });
  });
  const start = (base: number, env?: Record<string, string>) => {
    const dev = startDev(dataDir, base, env);
    running.push(dev);
    return dev;
  };

  test('the functions process SIGKILLed mid-stream and down for 15 s: spine dev restarts it, shows it, and delivers everything', async () => {
    const base = await freePortBase();
    const dev = start(base);
    await ready(dev);
    const env = await meshEnv(dataDir);
    const writer = startWriter(env, 'crash-functions');
    await until('writes flowing', () => writer.acknowledged.size >= 100 || undefined, 30_000, 50);
    const functionsPid = await findBelow(dev.child.pid!, /functions\/main\.ts/);
    // Held down longer than the emulator's push loop survived (about 10 s): stopped, then killed.
    process.kill(-functionsPid, 'SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    process.kill(-functionsPid, 'SIGKILL');
    await until(
      'more writes acknowledged while the functions are down',
      () => writer.acknowledged.size >= 250 || undefined,
      30_000,
      50,
    );
    const acknowledged = await writer.stop();

    const restarted = await until(
      'the supervisor restarted the functions',
      async () => {
        const status = JSON.parse(await readFile(path.join(dataDir, 'processes.json'), 'utf8')) as {
          functions: { restarts: number; state: string; lastExit?: { signal: string } };
        };
        return status.functions.restarts >= 1 && status.functions.state === 'running' ? status.functions : undefined;
      },
      60_000,
    );
    expect(restarted.lastExit?.signal).toBe('SIGKILL');
    expect(dev.output()).not.toMatch(/could not/);
    await expectAllMaterializedOnce(env, 'crash-functions', acknowledged, writer.issued());
    await expectFlowing(env, 'crash-functions');
    // spine health reports the restart.
    const health = await promisify(execFile)(
      process.execPath,
      [path.join(ROOT, 'bin/spine.js'), 'health', '--data-dir', dataDir],
      { cwd: ROOT },
    ).catch((error: { stdout: string }) => error);
    expect(health.stdout).toMatch(/functions process: running \(pid \d+\), restarted 1 time/);
  }, 300_000);

  test.each([
    ['spine dev alone', 'dev', 'immediate'],
    ['the whole process group', 'group', 'immediate'],
    // Pending copies of batched writes live in the emulator only: their sources must be replayed.
    ['the whole process group under batch persistence', 'group', 'batch'],
  ])(
    'SIGKILL of %s mid-stream: the next start on the same data dir delivers every acknowledged write once',
    async (_what, target, persistOn) => {
      const base = await freePortBase();
      const mode = persistOn === 'batch' ? { SPINE_PERSIST_ON: 'batch', SPINE_BATCH_WINDOW_MS: '1000' } : undefined;
      const first = start(base, mode);
      await ready(first);
      const env = await meshEnv(dataDir);
      const network = `crash-${target}-${persistOn}`;
      const writer = startWriter(env, network);
      await until('writes flowing', () => writer.acknowledged.size >= 300 || undefined, 30_000, 20);
      const tree = await descendants(first.child.pid!);
      if (target === 'group') {
        // The archiver falls behind (paused) while writes are materialized and marked done: what it
        // has not written when everything dies must still reach the archive.
        process.kill(await findBelow(first.child.pid!, /archiver-main/), 'SIGSTOP');
        const pausedAt = writer.acknowledged.size;
        await until(
          'writes while the archiver is paused',
          () => writer.acknowledged.size >= pausedAt + 200 || undefined,
          30_000,
          20,
        );
        const sincePause = new Set(writer.acknowledged);
        const reader = SpineStorage.fromEnv(env);
        try {
          await until(
            'the writes since the pause materialized',
            async () => {
              const present = new Set(await materializedItems(reader, network));
              return [...sincePause].every((i) => present.has(i)) || undefined;
            },
            120_000,
            200,
          );
        } finally {
          await reader.close();
        }
        // Past the journal's done-mark flush (1 s): without the archiver's hold they would now count as done.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
      if (target === 'dev')
        process.kill(await findBelow(first.child.pid!, /^\S*node\S* \S*bin\/spine\.js dev/), 'SIGKILL');
      else process.kill(-first.child.pid!, 'SIGKILL');
      const acknowledged = await writer.stop();
      await first.exited;
      await gone(tree, base);

      const second = start(base, mode);
      await ready(second);
      const again = await meshEnv(dataDir);
      await expectAllMaterializedOnce(again, network, acknowledged, writer.issued());
      // The archiver died with the rest: what it had not written yet must come back with the replay.
      if (target === 'group') await expectAllArchived(again, network, acknowledged);
      await expectFlowing(again, network);
    },
    300_000,
  );

  test('Ctrl-C while a writer keeps writing (batch persistence): a fast stop, and the next start has every acknowledged write once', async () => {
    const base = await freePortBase();
    const mode = { SPINE_PERSIST_ON: 'batch', SPINE_BATCH_WINDOW_MS: '1000' };
    const first = start(base, mode);
    await ready(first);
    const env = await meshEnv(dataDir);
    const writer = startWriter(env, 'ctrl-c');
    await until('writes flowing', () => writer.acknowledged.size >= 300 || undefined, 30_000, 20);
    const stopAsked = Date.now();
    process.kill(-first.child.pid!, 'SIGINT');
    await first.exited;
    const stopMs = Date.now() - stopAsked;
    const acknowledged = await writer.stop();
    expect(first.output()).toMatch(/\nstopped\.\n/);
    expect(stopMs).toBeLessThan(30_000);

    const second = start(base, mode);
    await ready(second);
    const again = await meshEnv(dataDir);
    await expectAllMaterializedOnce(again, 'ctrl-c', acknowledged, writer.issued());
    await expectFlowing(again, 'ctrl-c');
  }, 300_000);

  test('a message with empty data becomes a dead letter and the pipeline keeps flowing', async () => {
    const base = await freePortBase();
    const dev = start(base);
    await ready(dev);
    const env = await meshEnv(dataDir);
    const pubsub = new PubSub({
      projectId: env.GOOGLE_CLOUD_PROJECT,
      apiEndpoint: env.PUBSUB_EMULATOR_HOST,
      emulatorMode: true,
    });
    try {
      await pubsub
        .topic(`${env.SPINE_TOPIC_PREFIX}contact-writes`)
        .publishMessage({ data: Buffer.alloc(0), attributes: { path: 'poison/empty' } });
    } finally {
      await pubsub.close();
    }
    const writer = startWriter(env, 'after-poison');
    await until('writes flowing', () => writer.acknowledged.size >= 200 || undefined, 30_000, 20);
    const acknowledged = await writer.stop();
    await expectAllMaterializedOnce(env, 'after-poison', acknowledged, writer.issued());
    await expectFlowing(env, 'after-poison');
    const listed = await until(
      'the empty message listed as a dead letter',
      async () => {
        const { stdout } = await promisify(execFile)(
          process.execPath,
          [path.join(ROOT, 'bin/spine.js'), 'dlq', 'list', '--json', '--data-dir', dataDir],
          { cwd: ROOT },
        );
        const letters = JSON.parse(stdout) as Array<{ id: string; attributes?: Record<string, string>; data?: string }>;
        return letters.find((letter) => letter.attributes?.path === 'poison/empty');
      },
      60_000,
      1_000,
    );
    expect(listed.data ?? '').toBe('');
  }, 300_000);
});
