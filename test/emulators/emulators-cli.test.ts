/**
 * `npm run emulators` as a real child process, driven with the official clients, plus
 * startEmulators and the useEmulators test helper.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { PubSub } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { CloudTasksClient } from '@google-cloud/tasks';
import { EmulatorsStartError, startEmulators } from '../../emulators';
import { isGroupAlive } from '../../emulators/pubsub/process-group';
import { formatEnv, parseCliSettings } from '../../emulators/cli';
import { freePort, isListening, waitUntil } from '../../emulators/ports';
import { createMemoryLogger, useEmulators } from '../helpers/emulators';

// The Google clients otherwise probe the GCE metadata server and warn when it is not there.
process.env.METADATA_SERVER_DETECTION ??= 'none';

const repoRoot = path.resolve(__dirname, '../..');
const runId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
const ENV_KEYS = [
  'PUBSUB_EMULATOR_HOST',
  'PUBSUB_PROJECT_ID',
  'STORAGE_EMULATOR_HOST',
  'CLOUD_TASKS_EMULATOR_HOST',
  'GOOGLE_CLOUD_PROJECT',
  'METADATA_SERVER_DETECTION',
];

describe('parseCliSettings', () => {
  test('defaults: project spine-local, free ports, data in memory', () => {
    expect(parseCliSettings([], {})).toEqual({
      projectId: 'spine-local',
      dataDir: undefined,
      ports: { pubsub: 0, storage: 0, tasks: 0 },
      help: false,
    });
  });

  test('a flag wins over its environment variable, which wins over the default', () => {
    const env = { SPINE_EMULATORS_PROJECT: 'from-env', SPINE_PUBSUB_PORT: '8085', SPINE_TASKS_PORT: '8123' };
    const settings = parseCliSettings(['--project', 'from-flag', '--data-dir', '/tmp/spine', '--tasks-port=9000'], env);
    expect(settings).toMatchObject({
      projectId: 'from-flag',
      dataDir: '/tmp/spine',
      ports: { pubsub: 8085, storage: 0, tasks: 9000 },
    });
  });

  test('bad values and unknown flags are refused, naming the flag', () => {
    expect(() => parseCliSettings(['--pubsub-port', 'eighty'], {})).toThrow('invalid --pubsub-port "eighty"');
    expect(() => parseCliSettings([], { SPINE_STORAGE_PORT: '70000' })).toThrow('invalid --storage-port "70000"');
    expect(() => parseCliSettings(['--project', 'Bad_Project'], {})).toThrow('invalid --project');
    expect(() => parseCliSettings(['--pubsub'], {})).toThrow(/--pubsub/);
  });

  test('the environment is printed as KEY=value lines', () => {
    expect(formatEnv({ A: '1', B: 'http://127.0.0.1:2' })).toBe('A=1\nB=http://127.0.0.1:2\n');
  });
});

describe('startEmulators', () => {
  test('a part that fails to start is named, and the parts that started are stopped again', async () => {
    const ports = { storage: await freePort(), tasks: await freePort() };
    const error = await startEmulators({
      ports,
      pubsubOptions: { launcher: path.join(repoRoot, 'no-such-emulator') },
      logger: createMemoryLogger(),
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EmulatorsStartError);
    expect((error as EmulatorsStartError).failedParts).toEqual(['pubsub']);
    expect((error as Error).message).toMatch(
      /^could not start the local emulators: pubsub failed \(.*no-such-emulator/,
    );
    expect(await isListening(ports.storage)).toBe(false);
    expect(await isListening(ports.tasks)).toBe(false);
  }, 60_000);

  describe('through useEmulators', () => {
    const emulators = useEmulators({ projectId: `spine-helper-${runId}`.slice(0, 30), setEnv: true });

    test('all three answer, and their environment is in process.env during the suite', async () => {
      const env = emulators.env();
      expect(Object.keys(env).sort()).toEqual([...ENV_KEYS].sort());
      expect(env).toMatchObject({
        PUBSUB_EMULATOR_HOST: `127.0.0.1:${emulators.pubsub.port}`,
        STORAGE_EMULATOR_HOST: `http://127.0.0.1:${emulators.storage.port}`,
        CLOUD_TASKS_EMULATOR_HOST: `127.0.0.1:${emulators.tasks.port}`,
        GOOGLE_CLOUD_PROJECT: emulators.projectId,
        METADATA_SERVER_DETECTION: 'none',
      });
      for (const [key, value] of Object.entries(env)) expect(process.env[key]).toBe(value);
      for (const port of [emulators.pubsub.port, emulators.storage.port, emulators.tasks.port]) {
        expect(await isListening(port)).toBe(true);
      }
    });
  });
});

describe('npm run emulators', () => {
  const running: RunningCli[] = [];
  afterEach(() => {
    // Whatever a failed test left behind.
    for (const cli of running.splice(0)) cli.killEverything();
  });

  test('prints the environment, serves every client, and Ctrl-C leaves no process behind', async () => {
    const projectId = `spine-cli-${runId}`.slice(0, 30);
    const cli = runCli('npm', ['run', '--silent', 'emulators', '--', '--project', projectId]);
    running.push(cli);
    const env = await cli.environment();

    expect(Object.keys(env).sort()).toEqual([...ENV_KEYS].sort());
    expect(env.GOOGLE_CLOUD_PROJECT).toBe(projectId);
    expect(env.PUBSUB_EMULATOR_HOST).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(env.STORAGE_EMULATOR_HOST).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(env.CLOUD_TASKS_EMULATOR_HOST).toMatch(/^127\.0\.0\.1:\d+$/);
    await useEveryEndpoint(env, projectId);

    const javaPid = await cli.pubsubPid();
    expect(isGroupAlive(javaPid)).toBe(true);
    process.kill(-cli.pid, 'SIGINT'); // what Ctrl-C in a terminal does: the whole foreground group
    // npm re-raises the SIGINT on itself once its child has exited; the CLI itself exits 0.
    expect([
      { code: 0, signal: null },
      { code: null, signal: 'SIGINT' },
    ]).toContainEqual(await cli.exited);

    await expectGone(cli.pid, javaPid);
    for (const address of [env.PUBSUB_EMULATOR_HOST, env.STORAGE_EMULATOR_HOST, env.CLOUD_TASKS_EMULATOR_HOST]) {
      expect(await isListening(portOf(address))).toBe(false);
    }
    expectStoppedCleanly(cli);
  }, 120_000);

  test('SIGTERM to `tsx emulators/cli.ts` stops the Java emulator too', async () => {
    const cli = runCli(path.join(repoRoot, 'node_modules/.bin/tsx'), ['emulators/cli.ts']);
    running.push(cli);
    const env = await cli.environment();
    const javaPid = await cli.pubsubPid();

    process.kill(cli.pid, 'SIGTERM');
    await cli.exited;

    await expectGone(cli.pid, javaPid);
    expect(await isListening(portOf(env.PUBSUB_EMULATOR_HOST))).toBe(false);
    expectStoppedCleanly(cli);
  }, 120_000);

  test('SIGTERM to npm alone (as a process manager sends it) stops everything it started', async () => {
    const cli = runCli('npm', ['run', '--silent', 'emulators']);
    running.push(cli);
    await cli.environment();
    const javaPid = await cli.pubsubPid();

    process.kill(cli.pid, 'SIGTERM'); // npm passes it to `sh -c`, which dies without passing it on
    await cli.exited;

    await expectGone(cli.pid, javaPid);
    expectStoppedCleanly(cli);
  }, 120_000);

  test('Ctrl-C while the emulators are still starting stops them too', async () => {
    const cli = runCli(path.join(repoRoot, 'node_modules/.bin/tsx'), ['emulators/cli.ts'], {
      SPINE_LOG_LEVEL: 'DEBUG',
    });
    running.push(cli);
    const spawned = await cli.logEntry('pubsub emulator spawned');
    const javaPid = spawned.pid as number;
    expect(cli.stderr()).not.toContain('"message":"pubsub emulator ready"');

    process.kill(-cli.pid, 'SIGINT');
    await cli.exited;

    await expectGone(cli.pid, javaPid);
    expectStoppedCleanly(cli);
  }, 120_000);

  test('a part that cannot start fails the CLI with exit code 1, naming it, and leaves nothing running', async () => {
    const cli = runCli(path.join(repoRoot, 'node_modules/.bin/tsx'), ['emulators/cli.ts'], {
      SPINE_PUBSUB_EMULATOR: path.join(repoRoot, 'no-such-emulator'),
    });
    running.push(cli);

    expect(await cli.exited).toEqual({ code: 1, signal: null });
    expect(cli.stdout()).toBe('');
    expect(cli.stderr()).toContain('pubsub failed');
    expect(cli.stderr()).toContain('gcloud components install pubsub-emulator');
    await expectGone(cli.pid);
  }, 60_000);

  test('a bad flag fails with exit code 2 and the usage', async () => {
    const cli = runCli(path.join(repoRoot, 'node_modules/.bin/tsx'), ['emulators/cli.ts', '--pubsub-port', 'x']);
    running.push(cli);

    expect(await cli.exited).toEqual({ code: 2, signal: null });
    expect(cli.stderr()).toContain('invalid --pubsub-port "x"');
    expect(cli.stderr()).toContain('Usage: npm run emulators');
  }, 60_000);
});

/** Creates a Pub/Sub topic, a bucket and a Cloud Tasks queue through the printed endpoints. */
async function useEveryEndpoint(env: Record<string, string | undefined>, projectId: string): Promise<void> {
  const pubsub = new PubSub({ projectId, apiEndpoint: env.PUBSUB_EMULATOR_HOST });
  try {
    const [topic] = await pubsub.createTopic(`cli-topic-${runId}`);
    expect((await topic.exists())[0]).toBe(true);
  } finally {
    await pubsub.close();
  }

  const storage = new Storage({ projectId, apiEndpoint: env.STORAGE_EMULATOR_HOST });
  const [bucket] = await storage.createBucket(`cli-bucket-${runId}`);
  expect((await bucket.exists())[0]).toBe(true);

  const [servicePath = '', port = ''] = env.CLOUD_TASKS_EMULATOR_HOST!.split(':');
  const tasks = new CloudTasksClient({ servicePath, port: Number(port), sslCreds: grpc.credentials.createInsecure() });
  try {
    const parent = tasks.locationPath(projectId, 'us-central1');
    const [queue] = await tasks.createQueue({
      parent,
      queue: { name: tasks.queuePath(projectId, 'us-central1', `cli-queue-${runId}`) },
    });
    expect(queue.name).toBe(`${parent}/queues/cli-queue-${runId}`);
  } finally {
    await tasks.close();
  }
}

interface RunningCli {
  pid: number;
  /** The KEY=value lines, once all of them were printed. */
  environment(): Promise<Record<string, string | undefined>>;
  /** Pid of the Java emulator, from the CLI's structured logs. */
  pubsubPid(): Promise<number>;
  /** The first structured log entry with this message. */
  logEntry(message: string): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
  killEverything(): void;
}

/** Starts the CLI in its own process group, as a shell starts a job. */
function runCli(command: string, args: string[], extraEnv: Record<string, string> = {}): RunningCli {
  const child: ChildProcessWithoutNullStreams = spawn(command, args, {
    cwd: repoRoot,
    detached: true,
    env: { ...process.env, SPINE_LOG_LEVEL: 'INFO', ...extraEnv },
  });
  const pid = child.pid!;
  let stdout = '';
  let stderr = '';
  const env: Record<string, string> = {};
  const logEntries: Record<string, unknown>[] = [];
  const pubsubPids = () =>
    logEntries.flatMap((entry) =>
      /^pubsub emulator (spawned|ready)$/.test(String(entry.message)) && typeof entry.pid === 'number'
        ? [entry.pid]
        : [],
    );

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout += `${line}\n`;
    const match = /^([A-Z_]+)=(.*)$/.exec(line);
    if (match) env[match[1]!] = match[2]!;
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr += `${line}\n`;
    const entry = parseJson(line);
    if (entry) logEntries.push(entry);
  });

  const until = async <T>(value: () => T | undefined, what: string): Promise<T> => {
    let ended = false;
    void exited.then(() => (ended = true));
    await waitUntil(
      () => {
        if (value() !== undefined) return true;
        if (ended) throw new Error(`the CLI exited before ${what}; stderr:\n${stderr}`);
        return false;
      },
      { timeoutMs: 90_000, intervalMs: 50, what },
    );
    return value()!;
  };

  return {
    pid,
    environment: () =>
      until(() => (ENV_KEYS.every((key) => key in env) ? { ...env } : undefined), 'it printed the environment'),
    pubsubPid: async () =>
      (
        await until(
          () => logEntries.find((entry) => entry.message === 'pubsub emulator ready'),
          'the pubsub emulator was ready',
        )
      ).pid as number,
    logEntry: (message) => until(() => logEntries.find((entry) => entry.message === message), `it logged "${message}"`),
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    killEverything: () => {
      for (const group of [pid, ...pubsubPids()]) {
        try {
          process.kill(-group, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    },
  };
}

/** Stopped by stop(), not only by the exit hook's SIGKILL. */
function expectStoppedCleanly(cli: RunningCli): void {
  expect(cli.stderr()).toContain('"message":"pubsub emulator stopped"');
  expect(cli.stderr()).toContain('"message":"emulators stopped"');
}

/** Waits until no process of the given process groups is left. */
async function expectGone(...groups: number[]): Promise<void> {
  await waitUntil(() => groups.every((group) => !isGroupAlive(group)), {
    timeoutMs: 15_000,
    what: `process groups ${groups.join(', ')} to be gone`,
  });
  for (const group of groups) expect(() => process.kill(-group, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
}

function portOf(address: string | undefined): number {
  return Number(/:(\d+)$/.exec(address ?? '')?.[1]);
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
