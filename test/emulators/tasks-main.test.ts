import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { CloudTasksClient } from '@google-cloud/tasks';
import * as grpc from '@grpc/grpc-js';
import { freePort, waitUntil } from '../../emulators/ports';

process.env.METADATA_SERVER_DETECTION ??= 'none';

const repoRoot = path.resolve(__dirname, '../..');

describe('emulators/tasks/main.ts', () => {
  let child: ChildProcess | undefined;
  let output = '';

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  test('prints CLOUD_TASKS_EMULATOR_HOST, serves the client and exits cleanly on SIGTERM', async () => {
    const port = await freePort();
    child = spawn(
      process.execPath,
      [path.join(repoRoot, 'node_modules/tsx/dist/cli.mjs'), 'emulators/tasks/main.ts', '--port', String(port)],
      {
        cwd: repoRoot,
        env: { ...process.env, SPINE_LOG_LEVEL: 'WARNING' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));

    await waitUntil(() => output.includes('CLOUD_TASKS_EMULATOR_HOST='), {
      timeoutMs: 30_000,
      what: 'the address line',
    });
    expect(output).toContain(`CLOUD_TASKS_EMULATOR_HOST=127.0.0.1:${port}\n`);

    const client = new CloudTasksClient({
      servicePath: '127.0.0.1',
      port,
      sslCreds: grpc.credentials.createInsecure(),
      universeDomain: 'googleapis.com',
    });
    const parent = 'projects/p/locations/l';
    await client.createQueue({ parent, queue: { name: `${parent}/queues/from-cli` } });
    const [queues] = await client.listQueues({ parent });
    expect(queues.map((q) => q.name)).toEqual([`${parent}/queues/from-cli`]);
    await client.close();

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
