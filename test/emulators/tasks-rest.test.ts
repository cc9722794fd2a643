/**
 * The Cloud Tasks emulator's REST API (HTTP/1.1 JSON, the v2 protos' HTTP bindings) on the
 * same port as gRPC: on the wire as gcloud and google-api-python-client send it, through
 * `@google-cloud/tasks` with `fallback: true` and `'rest'`, and shared with gRPC clients.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudTasksClient } from '@google-cloud/tasks';
import { OAuth2Client } from 'google-auth-library';
import { waitUntil } from '../../emulators/ports';
import { startTasksEmulator, type TasksEmulator } from '../../emulators/tasks';
import { createMemoryLogger } from '../helpers/emulators';

process.env.METADATA_SERVER_DETECTION ??= 'none';

const parent = 'projects/rest-test/locations/us-central1';
let queueCount = 0;
const newQueueId = () => `rest-${process.pid}-${++queueCount}`;

let emulator: TasksEmulator;
let base: string;
const received: Array<{ path: string; method: string; body: string; headers: http.IncomingHttpHeaders }> = [];
const target = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    received.push({
      path: req.url ?? '',
      method: req.method ?? '',
      body: Buffer.concat(chunks).toString(),
      headers: req.headers,
    });
    res.writeHead(200).end();
  });
});
let targetUrl: string;

beforeAll(async () => {
  emulator = await startTasksEmulator({ logger: createMemoryLogger(), queueNameReuseMs: 0 });
  base = `http://${emulator.address}`;
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await emulator?.stop();
  await new Promise((resolve) => target.close(resolve));
});

async function rest(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${base}${path}`, {
    method,
    ...(body !== undefined && {
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    }),
  });
  return { status: response.status, json: await response.json() };
}

async function createQueue(id = newQueueId(), settings: Record<string, unknown> = {}): Promise<string> {
  const res = await rest('POST', `/v2/${parent}/queues`, { name: `${parent}/queues/${id}`, ...settings });
  expect(res.status).toBe(200);
  return res.json.name;
}

describe('queues over REST', () => {
  test('create, get, list (paged), patch with updateMask, pause, resume, purge, delete', async () => {
    const name = await createQueue(newQueueId(), {
      rateLimits: { maxDispatchesPerSecond: 10 },
      retryConfig: { minBackoff: '2.5s', maxAttempts: 7 },
    });
    const got = await rest('GET', `/v2/${name}`);
    // proto3 JSON: Durations as strings, doubles as numbers, enums by name.
    expect(got.json).toMatchObject({
      name,
      rateLimits: { maxDispatchesPerSecond: 10, maxBurstSize: 2 },
      retryConfig: { minBackoff: '2.500s', maxAttempts: 7 },
      state: 'RUNNING',
    });

    const second = await createQueue();
    const firstPage = await rest('GET', `/v2/${parent}/queues?pageSize=1`);
    expect(firstPage.json.queues).toHaveLength(1);
    const rest2 = await rest(
      'GET',
      `/v2/${parent}/queues?pageSize=100&pageToken=${encodeURIComponent(firstPage.json.nextPageToken)}`,
    );
    expect([...firstPage.json.queues, ...rest2.json.queues].map((q: { name: string }) => q.name)).toEqual(
      expect.arrayContaining([name, second]),
    );
    const paused = await rest('GET', `/v2/${parent}/queues?filter=${encodeURIComponent('state: PAUSED')}`);
    expect(paused.json.queues ?? []).toHaveLength(0);

    const patched = await rest('PATCH', `/v2/${name}?updateMask=rateLimits.maxDispatchesPerSecond`, {
      rateLimits: { maxDispatchesPerSecond: 3 },
    });
    expect(patched.status).toBe(200);
    expect(patched.json.rateLimits.maxDispatchesPerSecond).toBe(3);
    expect(patched.json.retryConfig.maxAttempts).toBe(7);

    expect((await rest('POST', `/v2/${name}:pause`, {})).json.state).toBe('PAUSED');
    expect((await rest('POST', `/v2/${name}:resume`, {})).json.state).toBe('RUNNING');
    expect((await rest('POST', `/v2/${name}:purge`, {})).json.purgeTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    const deleted = await rest('DELETE', `/v2/${name}`);
    expect(deleted).toEqual({ status: 200, json: {} });
    expect((await rest('GET', `/v2/${name}`)).status).toBe(404);
  });

  test("errors are Google's error JSON with the HTTP status of the gRPC code", async () => {
    const name = await createQueue();
    expect(await rest('GET', `/v2/${parent}/queues/missing-queue`)).toEqual({
      status: 404,
      json: { error: { code: 404, message: 'Requested entity was not found.', status: 'NOT_FOUND' } },
    });
    const duplicate = await rest('POST', `/v2/${parent}/queues`, { name });
    expect(duplicate.json.error).toMatchObject({ code: 409, status: 'ALREADY_EXISTS' });
    expect((await rest('POST', `/v2/${parent}/queues`, '{not json')).json.error).toMatchObject({
      code: 400,
      status: 'INVALID_ARGUMENT',
    });
    expect((await rest('GET', `/v2/${parent}/queues?noSuchField=1`)).json.error).toMatchObject({
      code: 400,
      status: 'INVALID_ARGUMENT',
    });
  });

  test('a route the emulator does not serve answers 400 at once, naming the route and the emulator', async () => {
    const res = await rest('GET', '/v2/projects/rest-test/locations');
    expect(res.status).toBe(400);
    expect(res.json.error.status).toBe('UNIMPLEMENTED');
    expect(res.json.error.message).toContain(
      'Cloud Tasks emulator does not serve GET /v2/projects/rest-test/locations',
    );
    const appEngine = await rest('POST', `/v2/${await createQueue()}/tasks`, {
      task: { appEngineHttpRequest: { relativeUri: '/x' } },
    });
    expect(appEngine.status).toBe(400);
    expect(appEngine.json.error.status).toBe('UNIMPLEMENTED');
  });
});

describe('tasks over REST', () => {
  test('create (base64 body, named), de-duplicate, list with FULL view, get, run dispatches, delete', async () => {
    const queue = await createQueue();
    await rest('POST', `/v2/${queue}:pause`, {});
    const taskName = `${queue}/tasks/window-1`;
    const body = Buffer.from(JSON.stringify({ hello: 'rest' })).toString('base64');
    const created = await rest('POST', `/v2/${queue}/tasks`, {
      task: {
        name: taskName,
        httpRequest: { url: `${targetUrl}/run`, httpMethod: 'PUT', body, headers: { 'X-Test': 'yes' } },
      },
      responseView: 'FULL',
    });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({ name: taskName, view: 'FULL', httpRequest: { body, httpMethod: 'PUT' } });
    expect(created.json.scheduleTime).toMatch(/Z$/);

    const again = await rest('POST', `/v2/${queue}/tasks`, {
      task: { name: taskName, httpRequest: { url: `${targetUrl}/run` } },
    });
    expect(again.json.error).toMatchObject({ code: 409, status: 'ALREADY_EXISTS' });

    const listed = await rest('GET', `/v2/${queue}/tasks?responseView=FULL`);
    expect(listed.json.tasks.map((t: { name: string }) => t.name)).toEqual([taskName]);
    expect(listed.json.tasks[0].httpRequest.headers['X-Test']).toBe('yes');
    expect((await rest('GET', `/v2/${taskName}`)).json).toMatchObject({ name: taskName, view: 'BASIC' });

    const ran = await rest('POST', `/v2/${taskName}:run`, {});
    expect(ran.status).toBe(200);
    await waitUntil(() => received.some((r) => r.path === '/run'), { what: 'the run task to be dispatched' });
    const dispatched = received.find((r) => r.path === '/run')!;
    expect(dispatched).toMatchObject({ method: 'PUT', body: JSON.stringify({ hello: 'rest' }) });
    expect(dispatched.headers['x-cloudtasks-taskname']).toBe('window-1');

    const other = await rest('POST', `/v2/${queue}/tasks`, { task: { httpRequest: { url: `${targetUrl}/never` } } });
    expect((await rest('DELETE', `/v2/${other.json.name}`)).status).toBe(200);
    expect((await rest('GET', `/v2/${other.json.name}`)).status).toBe(404);
  });
});

describe('one set of queues for both protocols', () => {
  test('a queue made over REST is seen by gRPC, a task made over gRPC by REST', async () => {
    const grpcClient = new CloudTasksClient(emulator.clientOptions());
    try {
      const name = await createQueue();
      await rest('POST', `/v2/${name}:pause`, {});
      const [queue] = await grpcClient.getQueue({ name });
      expect(queue).toMatchObject({ name, state: 'PAUSED' });
      const [task] = await grpcClient.createTask({ parent: name, task: { httpRequest: { url: `${targetUrl}/grpc` } } });
      const seen = await rest('GET', `/v2/${task.name}`);
      expect(seen.json.name).toBe(task.name);
    } finally {
      await grpcClient.close();
    }
  });
});

describe('@google-cloud/tasks over REST', () => {
  test.each([true, 'rest'] as const)(
    'fallback: %s creates a queue, a task that is dispatched, and reports NOT_FOUND',
    async (fallback) => {
      const authClient = new OAuth2Client();
      authClient.credentials = { access_token: 'unused-by-the-emulator' };
      const client = new CloudTasksClient({
        fallback,
        apiEndpoint: emulator.host,
        port: emulator.port,
        protocol: 'http',
        authClient,
      } as never);
      try {
        const id = newQueueId();
        const [queue] = await client.createQueue({
          parent,
          queue: { name: `${parent}/queues/${id}`, retryConfig: { maxAttempts: 3 } },
        });
        expect(queue.retryConfig?.maxAttempts).toBe(3);
        const path = `/fallback-${String(fallback)}`;
        const [task] = await client.createTask({
          parent: queue.name!,
          task: {
            httpRequest: { url: `${targetUrl}${path}`, body: Buffer.from('from the Node client'), httpMethod: 'POST' },
          },
        });
        expect(task.name).toMatch(new RegExp(`^${queue.name}/tasks/\\d+$`));
        await waitUntil(() => received.some((r) => r.path === path), { what: 'the task to be dispatched' });
        expect(received.find((r) => r.path === path)!.body).toBe('from the Node client');
        await expect(client.getQueue({ name: `${parent}/queues/none-here` })).rejects.toMatchObject({ code: 5 });
      } finally {
        await client.close();
      }
    },
  );
});
