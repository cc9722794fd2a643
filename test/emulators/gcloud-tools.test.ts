/**
 * gcloud, as a real process, against the Storage and Tasks emulators: the commands a new user
 * tries first. Runs where the Cloud SDK is installed (CI has it); skipped, saying so, where not.
 * gcloud takes a second or more per call on a busy machine, so each command is run once.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Storage } from '@google-cloud/storage';
import { waitUntil } from '../../emulators/ports';
import { startStorageEmulator, type StorageEmulator } from '../../emulators/storage';
import { silentLogger, storageClientOptions } from '../../emulators/storage/testing';
import { startTasksEmulator, type TasksEmulator } from '../../emulators/tasks';
import { createMemoryLogger } from '../helpers/emulators';

process.env.METADATA_SERVER_DETECTION = 'none';
const run = promisify(execFile);

const gcloudPath = (process.env.PATH ?? '')
  .split(path.delimiter)
  .map((dir) => path.join(dir, 'gcloud'))
  .find((candidate) => {
    try {
      require('node:fs').accessSync(candidate, require('node:fs').constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
const describeWithGcloud = gcloudPath ? describe : describe.skip;
const skipNote = gcloudPath ? '' : ' (skipped: gcloud is not on the PATH; install the Google Cloud SDK to run these)';

const project = 'gcloud-test';
let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'spine-gcloud-'));
});

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Runs gcloud with its own config dir and no credentials; fails the test with gcloud's stderr. */
async function gcloud(args: string[], env: Record<string, string>): Promise<string> {
  try {
    const { stdout } = await run(gcloudPath!, args, {
      env: {
        ...process.env,
        CLOUDSDK_CONFIG: path.join(workDir, 'config'),
        CLOUDSDK_AUTH_DISABLE_CREDENTIALS: 'true',
        CLOUDSDK_CORE_PROJECT: project,
        CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
        ...env,
      },
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const failed = error as { stderr?: string; message: string };
    throw new Error(`gcloud ${args.join(' ')} failed: ${failed.stderr ?? failed.message}`, { cause: error });
  }
}

describeWithGcloud(`gcloud storage against the storage emulator${skipNote}`, () => {
  let emulator: StorageEmulator;
  let storage: Storage;
  let env: Record<string, string>;
  const bucket = `gcloud-${process.pid}`;

  beforeAll(async () => {
    emulator = await startStorageEmulator({ logger: silentLogger });
    storage = new Storage(storageClientOptions(emulator));
    env = { CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE: `${emulator.url}/` };
  });

  afterAll(async () => {
    await emulator?.stop();
  });

  test('buckets create and describe: upper-case location, region type', async () => {
    await gcloud(['storage', 'buckets', 'create', `gs://${bucket}`, '--location=us-central1'], env);
    const described = JSON.parse(
      await gcloud(['storage', 'buckets', 'describe', `gs://${bucket}`, '--format=json'], env),
    );
    expect(described).toMatchObject({ name: bucket, location: 'US-CENTRAL1', location_type: 'region' });
  }, 60_000);

  test('cp of a small file (multipart, LF), of 9 MiB (resumable) and as a parallel composite upload', async () => {
    const small = path.join(workDir, 'small.txt');
    const big = path.join(workDir, 'big.bin');
    const bigData = Buffer.alloc(9 * 1024 * 1024);
    for (let i = 0; i < bigData.length; i += 4096) bigData[i] = i % 251;
    await writeFile(small, 'hello from gcloud\n');
    await writeFile(big, bigData);
    await gcloud(['storage', 'cp', small, `gs://${bucket}/small.txt`], env);
    await gcloud(['storage', 'cp', big, `gs://${bucket}/big.bin`], env);
    await gcloud(['storage', 'cp', big, `gs://${bucket}/composite.bin`], {
      ...env,
      CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED: 'True',
      CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_THRESHOLD: '1M',
      CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_COMPONENT_SIZE: '3M',
    });
    const files = storage.bucket(bucket);
    expect((await files.file('small.txt').download())[0].toString()).toBe('hello from gcloud\n');
    expect((await files.file('big.bin').download())[0].equals(bigData)).toBe(true);
    const [composite] = await files.file('composite.bin').getMetadata();
    expect(composite.componentCount).toBeGreaterThan(1);
    expect((await files.file('composite.bin').download())[0].equals(bigData)).toBe(true);
  }, 120_000);

  test('rsync up, then mv (storageLayout first)', async () => {
    const dir = path.join(workDir, 'sync');
    await mkdir(path.join(dir, 'sub'), { recursive: true });
    await writeFile(path.join(dir, 'one.txt'), '1');
    await writeFile(path.join(dir, 'sub', 'two.txt'), '2');
    await gcloud(['storage', 'rsync', '--recursive', dir, `gs://${bucket}/sync`], env);
    await gcloud(['storage', 'mv', `gs://${bucket}/sync/one.txt`, `gs://${bucket}/moved.txt`], env);
    const [files] = await storage.bucket(bucket).getFiles({ prefix: '' });
    const names = files.map((file) => file.name);
    expect(names).toEqual(expect.arrayContaining(['moved.txt', 'sync/sub/two.txt']));
    expect(names).not.toContain('sync/one.txt');
  }, 60_000);

  test('ls -a shows noncurrent versions; rm -r empties and deletes a versioned bucket', async () => {
    const versioned = `${bucket}-v`;
    await storage.createBucket(versioned, { versioning: { enabled: true } });
    await storage.bucket(versioned).file('a.txt').save('one');
    await storage.bucket(versioned).file('a.txt').save('two');
    const listed = (await gcloud(['storage', 'ls', '-a', `gs://${versioned}`], env)).trim().split('\n');
    expect(listed).toHaveLength(2);
    expect(listed.every((line) => /^gs:\/\/.+\/a\.txt#\d+$/.test(line))).toBe(true);
    await gcloud(['storage', 'rm', '-r', `gs://${versioned}`], env);
    expect(await storage.bucket(versioned).exists()).toEqual([false]);
  }, 60_000);
});

describeWithGcloud(`gcloud tasks against the Tasks emulator (REST on its port)${skipNote}`, () => {
  let emulator: TasksEmulator;
  let env: Record<string, string>;
  const location = ['--location', 'us-central1'];
  const queue = `gcloud-${process.pid}`;
  const received: string[] = [];
  const target = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push(`${req.method} ${req.url} ${body}`);
      res.writeHead(200).end();
    });
  });
  let targetUrl: string;

  beforeAll(async () => {
    emulator = await startTasksEmulator({ logger: createMemoryLogger(), queueNameReuseMs: 0 });
    env = { CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDTASKS: `http://${emulator.address}/` };
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await emulator?.stop();
    await new Promise((resolve) => target.close(resolve));
  });

  test('queues create, describe, list, pause', async () => {
    await gcloud(['tasks', 'queues', 'create', queue, ...location, '--max-attempts=5'], env);
    const described = JSON.parse(
      await gcloud(['tasks', 'queues', 'describe', queue, ...location, '--format=json'], env),
    );
    expect(described).toMatchObject({
      name: `projects/${project}/locations/us-central1/queues/${queue}`,
      retryConfig: { maxAttempts: 5 },
      state: 'RUNNING',
    });
    const listed = JSON.parse(await gcloud(['tasks', 'queues', 'list', ...location, '--format=json'], env)) as Array<{
      name: string;
    }>;
    expect(listed.map((q) => q.name)).toContain(described.name);
    await gcloud(['tasks', 'queues', 'pause', queue, ...location], env);
    expect(emulator.stats().queues[described.name]?.state).toBe('PAUSED');
  }, 60_000);

  test('create-http-task (named, de-duplicated), tasks list and describe, delete', async () => {
    const taskArgs = [
      '--queue',
      queue,
      ...location,
      `--url=${targetUrl}/hook`,
      '--method=POST',
      '--body-content=from gcloud',
    ];
    await gcloud(['tasks', 'create-http-task', 'first', ...taskArgs], env);
    await expect(gcloud(['tasks', 'create-http-task', 'first', ...taskArgs], env)).rejects.toThrow(/ALREADY_EXISTS/);
    const listed = JSON.parse(
      await gcloud(['tasks', 'list', '--queue', queue, ...location, '--format=json'], env),
    ) as Array<{ name: string }>;
    expect(listed.map((t) => t.name.split('/').at(-1))).toEqual(['first']);
    const described = JSON.parse(
      await gcloud(
        ['tasks', 'describe', 'first', '--queue', queue, ...location, '--response-view=full', '--format=json'],
        env,
      ),
    );
    expect(described.httpRequest).toMatchObject({
      url: `${targetUrl}/hook`,
      httpMethod: 'POST',
      body: Buffer.from('from gcloud').toString('base64'),
    });
    await gcloud(['tasks', 'delete', 'first', '--queue', queue, ...location], env);
    expect(emulator.stats().queues[described.name.split('/tasks/')[0]]?.tasks).toBe(0);
  }, 90_000);

  test('queues resume dispatches a waiting task; purge and delete', async () => {
    await gcloud(
      [
        'tasks',
        'create-http-task',
        'second',
        '--queue',
        queue,
        ...location,
        `--url=${targetUrl}/resumed`,
        '--body-content=later',
      ],
      env,
    );
    await gcloud(['tasks', 'queues', 'resume', queue, ...location], env);
    await waitUntil(() => received.includes('POST /resumed later'), { what: 'the task to be dispatched after resume' });
    await gcloud(['tasks', 'queues', 'purge', queue, ...location], env);
    await gcloud(['tasks', 'queues', 'delete', queue, ...location], env);
    expect(Object.keys(emulator.stats().queues)).not.toContain(
      `projects/${project}/locations/us-central1/queues/${queue}`,
    );
  }, 90_000);
});
