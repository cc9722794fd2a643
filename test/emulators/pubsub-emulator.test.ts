import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PubSub, type Message } from '@google-cloud/pubsub';
import {
  EmulatorNotInstalledError,
  EmulatorStartError,
  InvalidEmulatorSettingError,
  startPubSubEmulator,
  type PubSubEmulator,
} from '../../emulators/pubsub';
import { findPubSubLauncher, LAUNCHER_IN_SDK } from '../../emulators/pubsub/launcher';
import { isGroupAlive } from '../../emulators/pubsub/process-group';
import { isListening, waitUntil } from '../../emulators/ports';
import { createMemoryLogger } from '../helpers/emulators';

// The Google clients otherwise probe the GCE metadata server and warn when it is not there.
process.env.METADATA_SERVER_DETECTION ??= 'none';

const repoRoot = path.resolve(__dirname, '../..');
const runId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'spine-pubsub-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Writes an executable shell script into the scratch folder and returns its path. */
function script(name: string, body: string): string {
  const file = path.join(scratch, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

describe('a running Pub/Sub emulator', () => {
  const logger = createMemoryLogger();
  let emulator: PubSubEmulator;
  let pubsub: PubSub;

  beforeAll(async () => {
    emulator = await startPubSubEmulator({ logger });
    pubsub = new PubSub({ projectId: emulator.projectId, apiEndpoint: emulator.address });
  }, 60_000);

  afterAll(async () => {
    await pubsub?.close();
    await emulator?.stop();
  });

  test('listens on 127.0.0.1 at a free port and gives the clients its environment', async () => {
    expect(emulator.host).toBe('127.0.0.1');
    expect(emulator.address).toBe(`127.0.0.1:${emulator.port}`);
    expect(emulator.projectId).toBe('spine-local');
    expect(emulator.env()).toEqual({ PUBSUB_EMULATOR_HOST: emulator.address, PUBSUB_PROJECT_ID: 'spine-local' });
    expect(await isListening(emulator.port)).toBe(true);
    const ready = logger.entries.find((entry) => entry.message === 'pubsub emulator ready');
    expect(ready?.fields).toMatchObject({
      pid: emulator.pid,
      startupMs: emulator.startupMs,
      address: emulator.address,
    });
  });

  test('the official client creates a topic and a subscription, publishes and receives', async () => {
    const [topic] = await pubsub.createTopic(`spine-test-topic-${runId}`);
    const [subscription] = await topic.createSubscription(`spine-test-sub-${runId}`);
    try {
      const received = new Promise<Message>((resolve) => subscription.once('message', resolve));
      const messageId = await topic.publishMessage({
        data: Buffer.from('hello spine'),
        attributes: { path: 'net/group' },
      });

      const message = await withDeadline(received, 15_000, 'the published message');
      message.ack();
      expect(message.id).toBe(messageId);
      expect(message.data.toString()).toBe('hello spine');
      expect(message.attributes).toEqual({ path: 'net/group' });
    } finally {
      await subscription.close();
    }
  });

  test('a client configured only by env() reaches it', async () => {
    const name = `spine-test-env-${runId}`;
    await pubsub.createTopic(name);
    const env = emulator.env();
    const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
    Object.assign(process.env, env);
    try {
      const fromEnv = new PubSub();
      const [topics] = await fromEnv.getTopics();
      await fromEnv.close();
      expect(topics.map((topic) => topic.name)).toContain(`projects/spine-local/topics/${name}`);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  test('its JVM heap is capped at 256 MB', () => {
    const commandLine = readFileSync(`/proc/${emulator.pid}/cmdline`, 'utf8').split('\0');
    expect(commandLine[0]).toMatch(/java$/);
    expect(commandLine).toContain('-Xmx256m');
    expect(commandLine).toContain(`--port=${emulator.port}`);
  });
});

describe('stopping', () => {
  test('stop() ends its whole process group and can be called again', async () => {
    const emulator = await startPubSubEmulator({ logger: createMemoryLogger() });
    expect(isGroupAlive(emulator.pid)).toBe(true);

    await emulator.stop();

    expect(() => process.kill(-emulator.pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    expect(processGone(emulator.pid)).toBe(true);
    expect(await isListening(emulator.port)).toBe(false);
    await expect(emulator.stop()).resolves.toBeUndefined();
  }, 60_000);

  test('the emulator is killed when the process that started it exits without stop()', async () => {
    const starter = startInChildProcess('process.exit(0)');
    const pid = await starter.emulatorPid;
    expect(await starter.exitCode).toBe(0);
    await expectGroupToEnd(pid);
  }, 60_000);

  const linuxWithSetpriv =
    process.platform === 'linux' && execFileSync('sh', ['-c', 'command -v setpriv || true']).length > 0;
  (linuxWithSetpriv ? test : test.skip)(
    'the emulator is killed when the process that started it is SIGKILLed',
    async () => {
      const starter = startInChildProcess('setInterval(() => {}, 1000)');
      const pid = await starter.emulatorPid;
      process.kill(await starter.nodePid, 'SIGKILL');
      await starter.exitCode;
      await expectGroupToEnd(pid);
    },
    60_000,
  );
});

/** Runs a Node process that starts an emulator, reports pids, then runs `then` (never stop()). */
function startInChildProcess(then: string) {
  const child = spawn(
    path.join(repoRoot, 'node_modules/.bin/tsx'),
    [
      '-e',
      `require(${JSON.stringify(path.join(repoRoot, 'emulators/pubsub'))})
         .startPubSubEmulator({ logger: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } } })
         .then((emulator) => { console.log('NODE=' + process.pid + ' EMULATOR=' + emulator.pid); ${then}; });`,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const pids = new Promise<{ node: number; emulator: number }>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /NODE=(\d+) EMULATOR=(\d+)/.exec(output);
      if (match) resolve({ node: Number(match[1]), emulator: Number(match[2]) });
    });
    child.once('exit', () => reject(new Error(`starter exited before reporting pids; output: ${output}`)));
  });
  return {
    nodePid: pids.then(({ node }) => node),
    emulatorPid: pids.then(({ emulator }) => emulator),
    exitCode: new Promise<number | null>((resolve) => child.once('exit', resolve)),
  };
}

async function expectGroupToEnd(pgid: number): Promise<void> {
  try {
    await waitUntil(() => !isGroupAlive(pgid), { timeoutMs: 10_000, what: `process group ${pgid} to be gone` });
  } finally {
    killGroup(pgid); // so a failure here leaves nothing behind
  }
}

describe('start-up failures', () => {
  const logger = createMemoryLogger();

  test('a launcher option that points nowhere is reported with the install hint', async () => {
    const launcher = path.join(scratch, 'no-such-launcher');
    const error = await startPubSubEmulator({ launcher, logger }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EmulatorNotInstalledError);
    expect(error).toMatchObject({ code: 'EMULATOR_NOT_INSTALLED', missing: 'pubsub-emulator' });
    expect((error as Error).message).toContain(launcher);
    expect((error as Error).message).toContain('apt-get install google-cloud-cli-pubsub-emulator');
    expect((error as Error).message).toContain('gcloud components install pubsub-emulator');
  });

  test('SPINE_PUBSUB_EMULATOR that points nowhere names the setting', async () => {
    const env = { ...process.env, SPINE_PUBSUB_EMULATOR: path.join(scratch, 'missing', 'cloud-pubsub-emulator') };
    const error = await startPubSubEmulator({ env, logger }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EmulatorNotInstalledError);
    expect((error as Error).message).toMatch(/SPINE_PUBSUB_EMULATOR points to .*missing/);
  });

  test('no java on the PATH is reported with a Java install hint', async () => {
    const launcher = script('java-check/cloud-pubsub-emulator', 'exit 0');
    const env = { PATH: path.join(scratch, 'empty-bin'), HOME: scratch };
    const error = await startPubSubEmulator({ launcher, env, logger }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EmulatorNotInstalledError);
    expect(error).toMatchObject({ missing: 'java' });
    expect((error as Error).message).toContain('no `java` found on the PATH');
    expect((error as Error).message).toContain('apt-get install openjdk-17-jre-headless');
  });

  test('a JAVA_HOME without bin/java is reported as such', async () => {
    const launcher = script('java-home-check/cloud-pubsub-emulator', 'exit 0');
    const env = { ...process.env, JAVA_HOME: scratch };
    const error = await startPubSubEmulator({ launcher, env, logger }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EmulatorNotInstalledError);
    expect(error).toMatchObject({ missing: 'java' });
    expect((error as Error).message).toContain(`JAVA_HOME is set to ${scratch}`);
  });

  test('a launcher that exits early fails with its output tail', async () => {
    const launcher = script(
      'crashing/cloud-pubsub-emulator',
      'echo "starting up"\necho "boom: cannot load config" >&2\nexit 3',
    );
    const error = await startPubSubEmulator({ launcher, logger }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EmulatorStartError);
    expect(error).toMatchObject({ code: 'EMULATOR_START_FAILED', outcome: { exitCode: 3 } });
    expect((error as Error).message).toContain('exited before it answered');
    expect((error as Error).message).toContain('boom: cannot load config');
  });

  test('a launcher that never answers times out and is stopped', async () => {
    const pidFile = path.join(scratch, 'silent.pid');
    const launcher = script('silent/cloud-pubsub-emulator', `echo $$ > ${pidFile}\nexec sleep 120`);
    const error = await startPubSubEmulator({ launcher, logger, startTimeoutMs: 1_500 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EmulatorStartError);
    expect((error as Error).message).toMatch(/did not answer .* within 1500 ms/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(isGroupAlive(pid)).toBe(false);
  });

  test('a requested port that is already taken is refused', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const error = await startPubSubEmulator({ port, logger }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EmulatorStartError);
      expect((error as Error).message).toContain(`port ${port} on 127.0.0.1 is already in use`);
    } finally {
      blocker.close();
    }
  });

  // Java fails to bind and then hangs; the error has to come from its output, not a timeout.
  // A port bound but not listening passes the up-front check; Node cannot make one, python can.
  const hasPython = execFileSync('sh', ['-c', 'command -v python3 || true']).length > 0;
  (hasPython ? test : test.skip)(
    'a port that Java cannot bind fails fast with the port in the message',
    async () => {
      const holder = spawn('python3', [
        '-c',
        "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1], flush=True); time.sleep(60)",
      ]);
      try {
        const port = Number(
          await new Promise<string>((resolve) =>
            holder.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString())),
          ),
        );
        const startedAt = Date.now();
        const error = await startPubSubEmulator({ port, logger, startTimeoutMs: 20_000 }).catch((e: unknown) => e);

        expect(error).toBeInstanceOf(EmulatorStartError);
        expect((error as Error).message).toContain(`the port of http://127.0.0.1:${port}/ is already in use`);
        expect(Date.now() - startedAt).toBeLessThan(15_000);
      } finally {
        holder.kill();
      }
    },
    30_000,
  );

  test('invalid options are refused by name before anything starts', async () => {
    await expect(startPubSubEmulator({ javaHeap: 'lots', logger })).rejects.toThrow(InvalidEmulatorSettingError);
    await expect(startPubSubEmulator({ javaHeap: 'lots', logger })).rejects.toThrow('invalid javaHeap "lots"');
    await expect(startPubSubEmulator({ port: 70_000, logger })).rejects.toThrow('invalid port 70000');
  });
});

describe('finding the launcher', () => {
  const noTools = { PATH: path.join(scratch, 'empty-bin'), HOME: scratch };

  test('nothing installed anywhere is reported with the install hint', async () => {
    const error = await findPubSubLauncher({ env: noTools, sdkRoots: [] }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EmulatorNotInstalledError);
    expect(error).toMatchObject({ missing: 'pubsub-emulator' });
    expect((error as Error).message).toContain('gcloud components install pubsub-emulator');
  });

  test('the launcher option wins over SPINE_PUBSUB_EMULATOR', async () => {
    const fromOption = script('option/cloud-pubsub-emulator', 'exit 0');
    const fromSetting = script('setting/cloud-pubsub-emulator', 'exit 0');
    const env = { ...noTools, SPINE_PUBSUB_EMULATOR: fromSetting };

    await expect(findPubSubLauncher({ launcher: fromOption, env })).resolves.toEqual({
      via: 'launcher',
      command: fromOption,
      source: 'option',
    });
    await expect(findPubSubLauncher({ env })).resolves.toMatchObject({ command: fromSetting, source: 'setting' });
  });

  test('the Cloud SDK that gcloud reports comes before the common folders', async () => {
    const reportedRoot = path.join(scratch, 'reported-sdk');
    const reported = script(path.join('reported-sdk', LAUNCHER_IN_SDK), 'exit 0');
    const commonRoot = path.join(scratch, 'common-sdk');
    script(path.join('common-sdk', LAUNCHER_IN_SDK), 'exit 0');
    script('bin-reporting/gcloud', `echo "${reportedRoot}"`);
    const env = { PATH: path.join(scratch, 'bin-reporting'), HOME: scratch };

    await expect(findPubSubLauncher({ env, sdkRoots: [commonRoot] })).resolves.toEqual({
      via: 'launcher',
      command: reported,
      source: 'gcloud-sdk-root',
    });
  });

  test('the SDK of a symlinked gcloud is found without running gcloud', async () => {
    const marker = path.join(scratch, 'linked-gcloud-ran');
    const sdkGcloud = script('linked-sdk/bin/gcloud', `touch ${marker}\necho /nowhere`);
    const launcher = script(path.join('linked-sdk', LAUNCHER_IN_SDK), 'exit 0');
    mkdirSync(path.join(scratch, 'bin-linked'), { recursive: true });
    symlinkSync(sdkGcloud, path.join(scratch, 'bin-linked', 'gcloud'));
    const env = { PATH: path.join(scratch, 'bin-linked'), HOME: scratch };

    await expect(findPubSubLauncher({ env, sdkRoots: [] })).resolves.toEqual({
      via: 'launcher',
      command: launcher,
      source: 'gcloud-sdk-root',
    });
    expect(existsSync(marker)).toBe(false);
  });

  test('common SDK folders are searched, then gcloud itself is the last resort', async () => {
    const commonRoot = path.join(scratch, 'common-only-sdk');
    const common = script(path.join('common-only-sdk', LAUNCHER_IN_SDK), 'exit 0');
    const gcloud = script('bin-silent/gcloud', 'exit 1');
    const env = { PATH: path.join(scratch, 'bin-silent'), HOME: scratch };

    await expect(
      findPubSubLauncher({ env, sdkRoots: [path.join(scratch, 'nowhere'), commonRoot] }),
    ).resolves.toMatchObject({
      command: common,
      source: 'common-path',
    });
    await expect(findPubSubLauncher({ env, sdkRoots: [] })).resolves.toEqual({
      via: 'gcloud',
      command: gcloud,
      source: 'gcloud',
    });
  });
});

function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
