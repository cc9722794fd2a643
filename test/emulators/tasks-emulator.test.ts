import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { status } from '@grpc/grpc-js';
import { CloudTasksClient, type protos } from '@google-cloud/tasks';
import { decodeIdTokenClaims, startTasksEmulator, type TasksEmulator } from '../../emulators/tasks';
import { serviceMessages as tasksServiceMessages } from '../../emulators/tasks/errors';
import { waitUntil } from '../../emulators/ports';
import { createMemoryLogger } from '../helpers/emulators';

// The Google clients otherwise probe the GCE metadata server.
process.env.METADATA_SERVER_DETECTION ??= 'none';

type ITask = protos.google.cloud.tasks.v2.ITask;
type IQueue = protos.google.cloud.tasks.v2.IQueue;

const project = 'spine-test';
const location = 'local';
const parent = `projects/${project}/locations/${location}`;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
let queueCounter = 0;
const newQueueName = (label: string) => `${parent}/queues/${label}-${runId}-${++queueCounter}`;
const shortId = (name: string) => name.split('/').at(-1)!;

/** What a test target answers: a status, optionally after a delay, or nothing at all ('hang'). */
type Reply = { status: number; delayMs?: number } | 'hang';

interface ReceivedRequest {
  path: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  receivedAt: number;
  /** When the answer was fully written. */
  answeredAt?: number;
  /** Set when the caller gave up before an answer was sent (dispatch deadline). */
  abortedAt?: number;
}

/**
 * A real HTTP server standing in for task handlers. Each path has a script: the reply for
 * its first, second, ... request (the last reply repeats). It records every request and
 * the peak number of requests in flight per path.
 */
class RecordingTarget {
  readonly requests: ReceivedRequest[] = [];
  private readonly scripts = new Map<string, Reply[]>();
  private readonly inFlight = new Map<string, number>();
  readonly peakInFlight = new Map<string, number>();
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  private readonly hanging = new Set<http.ServerResponse>();
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  script(path: string, ...replies: Reply[]): string {
    this.scripts.set(path, replies);
    return `${this.url}${path}`;
  }

  received(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? '/';
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const record: ReceivedRequest = {
        path,
        method: req.method ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        receivedAt: Date.now(),
      };
      this.requests.push(record);
      const count = this.received(path).length;
      const replies = this.scripts.get(path) ?? [{ status: 200 }];
      const reply = replies[Math.min(count, replies.length) - 1] ?? { status: 200 };
      const current = (this.inFlight.get(path) ?? 0) + 1;
      this.inFlight.set(path, current);
      this.peakInFlight.set(path, Math.max(this.peakInFlight.get(path) ?? 0, current));
      const finish = () => this.inFlight.set(path, (this.inFlight.get(path) ?? 1) - 1);
      res.on('finish', () => (record.answeredAt = Date.now()));
      res.on('close', () => {
        if (!res.writableFinished) record.abortedAt = Date.now();
        finish();
      });
      if (reply === 'hang') {
        this.hanging.add(res);
        return;
      }
      setTimeout(() => res.writeHead(reply.status).end(), reply.delayMs ?? 0);
    });
  }
}

/** The gRPC status and details a failed client call carries. */
async function rpcError(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call;
  } catch (error) {
    const { code, details } = error as { code: number; details: string };
    return { code, details };
  }
  throw new Error('expected the call to fail');
}

const seconds = (duration: protos.google.protobuf.IDuration | null | undefined) =>
  Number(duration?.seconds ?? 0) + (duration?.nanos ?? 0) / 1e9;
const millis = (time: protos.google.protobuf.ITimestamp | null | undefined) =>
  Number(time?.seconds ?? 0) * 1000 + (time?.nanos ?? 0) / 1e6;

describe('Cloud Tasks emulator through the official CloudTasksClient', () => {
  const logger = createMemoryLogger();
  const target = new RecordingTarget();
  let emulator: TasksEmulator;
  let client: CloudTasksClient;

  beforeAll(async () => {
    await target.start();
    emulator = await startTasksEmulator({ logger });
    client = new CloudTasksClient(emulator.clientOptions());
  });

  afterAll(async () => {
    await client?.close();
    await emulator?.stop();
    await target.stop();
  });

  async function createQueue(label: string, queue: Omit<IQueue, 'name'> = {}): Promise<string> {
    const [created] = await client.createQueue({ parent, queue: { name: newQueueName(label), ...queue } });
    return created.name!;
  }

  async function createTask(queue: string, task: ITask, responseView?: 'BASIC' | 'FULL'): Promise<ITask> {
    const [created] = await client.createTask({ parent: queue, task, ...(responseView && { responseView }) });
    return created;
  }

  const queueStats = (queue: string) => emulator.stats().queues[queue]!;

  async function taskGone(name: string): Promise<boolean> {
    const { code } = await rpcError(client.getTask({ name })).catch(() => ({ code: -1 }));
    return code === status.NOT_FOUND;
  }

  describe('queues', () => {
    test('a new queue reports the service defaults and RUNNING', async () => {
      const name = await createQueue('defaults');
      const [queue] = await client.getQueue({ name });
      expect(queue.name).toBe(name);
      expect(queue.state).toBe('RUNNING');
      expect(queue.rateLimits).toMatchObject({
        maxDispatchesPerSecond: 500,
        maxBurstSize: 100,
        maxConcurrentDispatches: 1000,
      });
      expect(queue.retryConfig?.maxAttempts).toBe(100);
      expect(seconds(queue.retryConfig?.minBackoff)).toBeCloseTo(0.1);
      expect(seconds(queue.retryConfig?.maxBackoff)).toBe(3600);
      expect(queue.retryConfig?.maxDoublings).toBe(16);
      expect(queue.purgeTime).toBeNull();
    });

    test('creating a queue that exists gives ALREADY_EXISTS; unknown queues NOT_FOUND', async () => {
      const name = await createQueue('dup');
      expect(await rpcError(client.createQueue({ parent, queue: { name } }))).toEqual({
        code: status.ALREADY_EXISTS,
        details: 'Requested entity already exists',
      });
      expect(await rpcError(client.getQueue({ name: `${parent}/queues/missing-${runId}` }))).toEqual({
        code: status.NOT_FOUND,
        details: 'Requested entity was not found.',
      });
    });

    test('bad names and settings give INVALID_ARGUMENT', async () => {
      const invalid = [
        client.createQueue({ parent, queue: { name: `${parent}/queues/under_score` } }),
        client.createQueue({ parent, queue: { name: `projects/${project}/locations/elsewhere/queues/q-${runId}` } }),
        client.createQueue({ parent: `projects/${project}`, queue: { name: newQueueName('noparent') } }),
        client.getQueue({ name: 'queues/x' }),
        client.createQueue({
          parent,
          queue: { name: newQueueName('fast'), rateLimits: { maxDispatchesPerSecond: 501 } },
        }),
        client.createQueue({
          parent,
          queue: {
            name: newQueueName('backoff'),
            retryConfig: { minBackoff: { seconds: 10 }, maxBackoff: { seconds: 1 } },
          },
        }),
        client.createQueue({ parent, queue: { name: newQueueName('attempts'), retryConfig: { maxAttempts: -2 } } }),
      ];
      for (const call of invalid) expect((await rpcError(call)).code).toBe(status.INVALID_ARGUMENT);
    });

    test('listing pages through queues in lexicographical order and filters on state', async () => {
      const listParent = `projects/${project}/locations/list-${runId}`;
      const names = ['q-c', 'q-a', 'q-e', 'q-b', 'q-d'].map((id) => `${listParent}/queues/${id}`);
      for (const name of names) await client.createQueue({ parent: listParent, queue: { name } });
      await client.pauseQueue({ name: names[1]! });

      const seen: string[] = [];
      let pageToken: string | undefined;
      let pages = 0;
      do {
        const [queues, , response] = await client.listQueues(
          { parent: listParent, pageSize: 2, pageToken },
          { autoPaginate: false },
        );
        expect(queues.length).toBeLessThanOrEqual(2);
        seen.push(...queues.map((q) => q.name!));
        pageToken = response?.nextPageToken || undefined;
        pages += 1;
      } while (pageToken);
      expect(pages).toBe(3);
      expect(seen).toEqual([...names].sort());

      const [paused] = await client.listQueues({ parent: listParent, filter: 'state: PAUSED' });
      expect(paused.map((q) => q.name)).toEqual([names[1]]);
      const [running] = await client.listQueues({ parent: listParent, filter: 'state != PAUSED' });
      expect(running).toHaveLength(4);
      expect((await rpcError(client.listQueues({ parent: listParent, filter: 'name: foo' }))).code).toBe(
        status.INVALID_ARGUMENT,
      );
    });

    test('update changes only the fields in the mask, everything without one, and creates a missing queue', async () => {
      const name = await createQueue('update', { retryConfig: { maxAttempts: 7 } });
      const [masked] = await client.updateQueue({
        queue: {
          name,
          rateLimits: { maxDispatchesPerSecond: 20, maxBurstSize: 9999 },
          retryConfig: { maxAttempts: 3 },
        },
        updateMask: { paths: ['rate_limits.max_dispatches_per_second'] },
      });
      expect(masked.rateLimits).toMatchObject({
        maxDispatchesPerSecond: 20,
        maxBurstSize: 4,
        maxConcurrentDispatches: 1000,
      });
      expect(masked.retryConfig?.maxAttempts).toBe(7);

      const [whole] = await client.updateQueue({ queue: { name, retryConfig: { maxAttempts: -1 } } });
      expect(whole.rateLimits?.maxDispatchesPerSecond).toBe(500);
      expect(whole.retryConfig?.maxAttempts).toBe(-1);

      const created = newQueueName('upsert');
      const [upserted] = await client.updateQueue({
        queue: { name: created, rateLimits: { maxConcurrentDispatches: 5 } },
      });
      expect(upserted.rateLimits?.maxConcurrentDispatches).toBe(5);
      expect((await client.getQueue({ name: created }))[0].name).toBe(created);

      expect(
        (await rpcError(client.updateQueue({ queue: { name }, updateMask: { paths: ['no_such_field'] } }))).code,
      ).toBe(status.INVALID_ARGUMENT);
    });

    test('pause and resume change the state; purge deletes every task and records the time', async () => {
      const name = await createQueue('lifecycle');
      expect((await client.pauseQueue({ name }))[0].state).toBe('PAUSED');
      const url = target.script('/purged', { status: 200 });
      for (let i = 0; i < 3; i++) await createTask(name, { httpRequest: { url } });
      expect((await client.listTasks({ parent: name }))[0]).toHaveLength(3);

      const before = Date.now();
      const [purged] = await client.purgeQueue({ name });
      expect(millis(purged.purgeTime)).toBeGreaterThanOrEqual(before - 1);
      expect((await client.listTasks({ parent: name }))[0]).toHaveLength(0);
      expect(queueStats(name).purged).toBe(3);

      expect((await client.resumeQueue({ name }))[0].state).toBe('RUNNING');
      expect(target.received('/purged')).toHaveLength(0);
    });

    test('a deleted queue is gone and its name cannot be reused for a while (FAILED_PRECONDITION)', async () => {
      const name = await createQueue('deleted');
      await client.deleteQueue({ name });
      expect((await rpcError(client.getQueue({ name }))).code).toBe(status.NOT_FOUND);
      expect((await rpcError(client.deleteQueue({ name }))).code).toBe(status.NOT_FOUND);
      expect(await rpcError(client.createQueue({ parent, queue: { name } }))).toEqual({
        code: status.FAILED_PRECONDITION,
        details: tasksServiceMessages.queueRecentlyDeleted,
      });
      expect((await rpcError(client.updateQueue({ queue: { name } }))).code).toBe(status.FAILED_PRECONDITION);
    });

    test('queue IAM policies are kept, and every permission is granted on existing queues', async () => {
      const name = await createQueue('iam');
      const [initial] = await client.getIamPolicy({ resource: name });
      expect(initial.bindings).toEqual([]);
      const binding = {
        role: 'roles/cloudtasks.enqueuer',
        members: ['serviceAccount:writer@spine-test.iam.gserviceaccount.com'],
      };
      const [set] = await client.setIamPolicy({ resource: name, policy: { bindings: [binding] } });
      expect(set.bindings).toMatchObject([binding]);
      expect((await client.getIamPolicy({ resource: name }))[0].bindings).toMatchObject([binding]);
      expect(
        (await rpcError(client.setIamPolicy({ resource: name, policy: { etag: Buffer.from('stale') } }))).code,
      ).toBe(status.ABORTED);

      const permissions = ['cloudtasks.tasks.create', 'cloudtasks.queues.get'];
      expect((await client.testIamPermissions({ resource: name, permissions }))[0].permissions).toEqual(permissions);
      expect(
        (await client.testIamPermissions({ resource: `${parent}/queues/none-${runId}`, permissions }))[0].permissions,
      ).toEqual([]);
    });
  });

  describe('tasks', () => {
    let paused: string;
    beforeAll(async () => {
      // Tasks here stay put so their fields can be inspected.
      paused = await createQueue('inspect');
      await client.pauseQueue({ name: paused });
    });

    test('a task without a name gets a generated one; views, times and defaults are filled as the service does', async () => {
      const url = target.script('/inspect', { status: 200 });
      const later = Date.now() + 60_000;
      const created = await createTask(paused, {
        httpRequest: { url, body: Buffer.from('{"hello":1}'), headers: { 'Content-Type': 'application/json' } },
        scheduleTime: { seconds: Math.floor(later / 1000), nanos: 250_000_000 },
      });
      expect(created.name).toMatch(new RegExp(`^${paused}/tasks/\\d+$`));
      expect(created.view).toBe('BASIC');
      expect(created.httpRequest?.body?.length ?? 0).toBe(0);
      expect(created.httpRequest).toMatchObject({
        url,
        httpMethod: 'POST',
        headers: { 'Content-Type': 'application/json' },
      });
      expect(millis(created.scheduleTime)).toBe(Math.floor(later / 1000) * 1000 + 250);
      expect(Number(created.createTime?.seconds)).toBeGreaterThan(0);
      expect(created.createTime?.nanos ?? 0).toBe(0);
      expect(seconds(created.dispatchDeadline)).toBe(600);
      expect(created.dispatchCount ?? 0).toBe(0);
      expect(created.firstAttempt).toBeNull();

      const [full] = await client.getTask({ name: created.name!, responseView: 'FULL' });
      expect(full.view).toBe('FULL');
      expect(Buffer.from(full.httpRequest!.body as Uint8Array).toString()).toBe('{"hello":1}');
      const [basic] = await client.getTask({ name: created.name! });
      expect(basic.httpRequest?.body?.length ?? 0).toBe(0);
    });

    test('a task scheduled in the past is scheduled now', async () => {
      const before = Date.now();
      const created = await createTask(paused, {
        httpRequest: { url: `${target.url}/past` },
        scheduleTime: { seconds: 1000 },
      });
      expect(millis(created.scheduleTime)).toBeGreaterThanOrEqual(before - 1);
    });

    test('listing tasks pages through them, BASIC by default and FULL on request', async () => {
      const queue = await createQueue('listing');
      await client.pauseQueue({ name: queue });
      const names = new Set<string>();
      for (let i = 0; i < 5; i++) {
        names.add(
          (
            await createTask(queue, {
              name: `${queue}/tasks/t${i}`,
              httpRequest: { url: `${target.url}/x`, body: Buffer.from('b') },
            })
          ).name!,
        );
      }
      const [firstPage, , response] = await client.listTasks({ parent: queue, pageSize: 3 }, { autoPaginate: false });
      expect(firstPage).toHaveLength(3);
      expect(firstPage.every((t) => t.view === 'BASIC' && (t.httpRequest?.body?.length ?? 0) === 0)).toBe(true);
      const [secondPage] = await client.listTasks(
        { parent: queue, pageSize: 3, pageToken: response!.nextPageToken!, responseView: 'FULL' },
        { autoPaginate: false },
      );
      expect(secondPage).toHaveLength(2);
      expect(secondPage.every((t) => t.view === 'FULL' && t.httpRequest?.body?.length === 1)).toBe(true);
      expect(new Set([...firstPage, ...secondPage].map((t) => t.name))).toEqual(names);
    });

    test('a task name used in the queue gets ALREADY_EXISTS: while queued, after it ran, after deletion', async () => {
      const queue = await createQueue('dedupe');
      const url = target.script('/dedupe', { status: 200 });
      const task = (id: string) => ({ name: `${queue}/tasks/${id}`, httpRequest: { url } });
      const alreadyExists = { code: status.ALREADY_EXISTS, details: 'Requested entity already exists' };

      await client.pauseQueue({ name: queue });
      await createTask(queue, task('queued'));
      expect(await rpcError(createTask(queue, task('queued')))).toEqual(alreadyExists);

      await createTask(queue, task('deleted'));
      await client.deleteTask({ name: `${queue}/tasks/deleted` });
      expect(await rpcError(createTask(queue, task('deleted')))).toEqual(alreadyExists);

      await client.resumeQueue({ name: queue });
      await waitUntil(() => taskGone(`${queue}/tasks/queued`), { what: 'the queued task to run' });
      expect(target.received('/dedupe')).toHaveLength(1);
      expect(await rpcError(createTask(queue, task('queued')))).toEqual(alreadyExists);
      expect(await rpcError(client.getTask({ name: `${queue}/tasks/queued` }))).toEqual({
        code: status.NOT_FOUND,
        details: tasksServiceMessages.taskRecentlyGone,
      });
    });

    test('deleting or getting an unknown task gives NOT_FOUND', async () => {
      const notFound = { code: status.NOT_FOUND, details: 'Requested entity was not found.' };
      expect(await rpcError(client.deleteTask({ name: `${paused}/tasks/never-created` }))).toEqual(notFound);
      expect(await rpcError(client.getTask({ name: `${paused}/tasks/never-created` }))).toEqual(notFound);
      expect(
        await rpcError(createTask(`${parent}/queues/missing-${runId}`, { httpRequest: { url: target.url } })),
      ).toEqual(notFound);
    });

    test('invalid tasks are refused: App Engine targets, bad URLs and headers, bodies on GET, names outside the queue', async () => {
      const unsupported = await rpcError(createTask(paused, { appEngineHttpRequest: { relativeUri: '/work' } }));
      expect(unsupported.code).toBe(status.UNIMPLEMENTED);
      expect(unsupported.details).toMatch(/App Engine/);
      const invalid = [
        createTask(paused, {}),
        createTask(paused, { httpRequest: { url: 'ftp://example.com/x' } }),
        createTask(paused, { httpRequest: { url: `${target.url}/x`, httpMethod: 'GET', body: Buffer.from('x') } }),
        createTask(paused, { name: `${parent}/queues/other/tasks/t1`, httpRequest: { url: `${target.url}/x` } }),
        createTask(paused, { name: `${paused}/tasks/bad.id`, httpRequest: { url: `${target.url}/x` } }),
        createTask(paused, { httpRequest: { url: `${target.url}/x` }, dispatchDeadline: { seconds: 3600 } }),
        createTask(paused, { httpRequest: { url: `${target.url}/x`, headers: { 'X-Split': 'a\r\nInjected: 1' } } }),
        client.getTask({ name: `${paused}/task/x` }),
      ];
      for (const call of invalid) expect((await rpcError(call)).code).toBe(status.INVALID_ARGUMENT);
    });

    test('RunTask dispatches at once even on a paused queue; refused while in flight, NOT_FOUND once done', async () => {
      const queue = await createQueue('run');
      await client.pauseQueue({ name: queue });
      const url = target.script('/run', { status: 200, delayMs: 300 });
      const task = await createTask(queue, { name: `${queue}/tasks/forced`, httpRequest: { url } });

      const before = Date.now();
      const [running] = await client.runTask({ name: task.name! });
      expect(running.dispatchCount).toBe(1);
      expect(millis(running.lastAttempt?.dispatchTime)).toBeGreaterThanOrEqual(before - 1);
      expect(running.lastAttempt?.responseTime).toBeNull();
      expect(millis(running.firstAttempt?.dispatchTime)).toBe(millis(running.lastAttempt?.dispatchTime));

      expect((await rpcError(client.runTask({ name: task.name! }))).code).toBe(status.FAILED_PRECONDITION);
      await waitUntil(() => taskGone(task.name!), { what: 'the forced task to finish' });
      expect(target.received('/run')).toHaveLength(1);
      expect((await rpcError(client.runTask({ name: task.name! }))).code).toBe(status.NOT_FOUND);
    });
  });

  describe('dispatch', () => {
    test('sends the HTTP request with its method, headers and body plus the Cloud Tasks headers', async () => {
      const queue = await createQueue('http');
      const url = target.script('/http?x=1', { status: 204 });
      const scheduled = Date.now() + 200;
      const task = await createTask(queue, {
        name: `${queue}/tasks/put-it`,
        httpRequest: {
          url,
          httpMethod: 'PUT',
          headers: {
            'Content-Type': 'text/plain',
            'X-Custom': 'yes',
            'User-Agent': 'mine',
            'X-CloudTasks-QueueName': 'spoofed',
          },
          body: Buffer.from('payload'),
        },
        scheduleTime: { seconds: Math.floor(scheduled / 1000), nanos: (scheduled % 1000) * 1e6 },
      });
      await waitUntil(() => target.received('/http?x=1').length === 1, { what: 'the request' });
      const [request] = target.received('/http?x=1');
      expect(request!.receivedAt).toBeGreaterThanOrEqual(scheduled);
      expect(request).toMatchObject({ method: 'PUT', body: 'payload' });
      expect(request!.headers).toMatchObject({
        'content-type': 'text/plain',
        'x-custom': 'yes',
        'user-agent': 'Google-Cloud-Tasks',
        'x-cloudtasks-queuename': shortId(queue),
        'x-cloudtasks-taskname': 'put-it',
        'x-cloudtasks-taskretrycount': '0',
        'x-cloudtasks-taskexecutioncount': '0',
      });
      expect(request!.headers['x-cloudtasks-taskpreviousresponse']).toBeUndefined();
      expect(Number(request!.headers['x-cloudtasks-tasketa'])).toBeCloseTo(millis(task.scheduleTime) / 1000, 3);
      await waitUntil(() => taskGone(task.name!), { what: 'the acknowledged task to be deleted' });
      expect(queueStats(queue)).toMatchObject({ created: 1, dispatched: 1, succeeded: 1, failedAttempts: 0, tasks: 0 });
    });

    test('a target answering 500 twice is retried with growing backoff and succeeds the third time', async () => {
      const queue = await createQueue('retry', {
        retryConfig: { minBackoff: { nanos: 100_000_000 }, maxBackoff: { seconds: 10 }, maxAttempts: 5 },
      });
      const url = target.script('/flaky', { status: 500 }, { status: 500 }, { status: 200 });
      const task = await createTask(queue, { name: `${queue}/tasks/flaky`, httpRequest: { url } });
      await waitUntil(() => taskGone(task.name!), { what: 'the task to succeed' });

      const attempts = target.received('/flaky');
      expect(attempts).toHaveLength(3);
      const header = (name: string) => attempts.map((a) => a.headers[name]);
      expect(header('x-cloudtasks-taskretrycount')).toEqual(['0', '1', '2']);
      // The service leaves 5xx answers out of the execution count.
      expect(header('x-cloudtasks-taskexecutioncount')).toEqual(['0', '0', '0']);
      expect(header('x-cloudtasks-taskpreviousresponse')).toEqual([undefined, '500', '500']);
      // From each 500 being answered to the next attempt arriving: minBackoff, then doubled.
      const gaps = [1, 2].map((i) => attempts[i]!.receivedAt - attempts[i - 1]!.answeredAt!);
      expect(gaps[0]).toBeGreaterThanOrEqual(100);
      expect(gaps[1]).toBeGreaterThanOrEqual(200);
      expect(gaps[0]).toBeLessThan(1000);
      expect(gaps[1]).toBeLessThan(1100);
      expect(queueStats(queue)).toMatchObject({
        dispatched: 3,
        failedAttempts: 2,
        retried: 2,
        succeeded: 1,
        dropped: 0,
      });
    });

    test('a 4xx answer counts as an execution; the failed attempt is recorded on the task', async () => {
      const queue = await createQueue('client-error', { retryConfig: { minBackoff: { seconds: 1 } } });
      const url = target.script('/client-error', { status: 404 }, { status: 200 });
      const task = await createTask(queue, { name: `${queue}/tasks/ce`, httpRequest: { url } });
      await waitUntil(
        async () => {
          const [current] = await client.getTask({ name: task.name! }).catch(() => [undefined]);
          return current?.responseCount === 1;
        },
        { what: 'the first response to be recorded' },
      );
      const [between] = await client.getTask({ name: task.name! });
      expect(between).toMatchObject({ dispatchCount: 1, responseCount: 1 });
      expect(between.lastAttempt?.responseStatus).toMatchObject({ code: status.NOT_FOUND });
      expect(millis(between.lastAttempt?.responseTime)).toBeGreaterThanOrEqual(
        millis(between.lastAttempt?.dispatchTime),
      );
      expect(millis(between.firstAttempt?.dispatchTime)).toBe(millis(between.lastAttempt?.dispatchTime));
      expect(between.firstAttempt?.responseTime).toBeNull();
      // The retry is scheduled minBackoff after the failure.
      expect(millis(between.scheduleTime)).toBeGreaterThanOrEqual(millis(between.lastAttempt?.responseTime) + 999);

      await waitUntil(() => taskGone(task.name!), { what: 'the retry to succeed' });
      const second = target.received('/client-error')[1]!;
      expect(second.headers).toMatchObject({
        'x-cloudtasks-taskretrycount': '1',
        'x-cloudtasks-taskexecutioncount': '1',
        'x-cloudtasks-taskpreviousresponse': '404',
      });
    });

    test('a paused queue dispatches nothing until resumed', async () => {
      const queue = await createQueue('paused');
      const witness = await createQueue('witness');
      await client.pauseQueue({ name: queue });
      const url = target.script('/paused', { status: 200 });
      for (let i = 0; i < 3; i++) await createTask(queue, { httpRequest: { url } });

      // A task created later on a running queue is dispatched at once; by then the paused ones would have been too.
      const witnessUrl = target.script('/witness', { status: 200 });
      await createTask(witness, { httpRequest: { url: witnessUrl } });
      await waitUntil(() => target.received('/witness').length === 1, { what: 'the witness task' });
      await waitUntil(() => queueStats(witness).succeeded === 1, { what: 'the witness task to finish' });
      expect(target.received('/paused')).toHaveLength(0);
      expect(queueStats(queue)).toMatchObject({ dispatched: 0, tasks: 3, state: 'PAUSED' });

      await client.resumeQueue({ name: queue });
      await waitUntil(() => target.received('/paused').length === 3, { what: 'the paused tasks after resume' });
    });

    test('maxConcurrentDispatches is never exceeded', async () => {
      const serial = await createQueue('serial', { rateLimits: { maxConcurrentDispatches: 1 } });
      const wide = await createQueue('wide', { rateLimits: { maxConcurrentDispatches: 3 } });
      const serialUrl = target.script('/serial', { status: 200, delayMs: 60 });
      const wideUrl = target.script('/wide', { status: 200, delayMs: 150 });
      for (let i = 0; i < 6; i++) {
        await createTask(serial, { httpRequest: { url: serialUrl } });
        await createTask(wide, { httpRequest: { url: wideUrl } });
      }
      await waitUntil(() => queueStats(serial).succeeded === 6 && queueStats(wide).succeeded === 6, {
        what: 'all tasks to finish',
      });
      expect(target.peakInFlight.get('/serial')).toBe(1);
      expect(queueStats(serial).peakInFlight).toBe(1);
      // The same load on a queue allowing 3 does overlap, up to 3 and no more.
      expect(target.peakInFlight.get('/wide')).toBe(3);
      expect(queueStats(wide).peakInFlight).toBe(3);
    });

    test('maxDispatchesPerSecond is respected (token bucket with the reported burst)', async () => {
      const rate = 10;
      const queue = await createQueue('rate', { rateLimits: { maxDispatchesPerSecond: rate } });
      const [{ rateLimits }] = await client.getQueue({ name: queue });
      const burst = rateLimits!.maxBurstSize!;
      expect(burst).toBe(2);
      const url = target.script('/rate', { status: 200 });
      const count = 14;
      await Promise.all(Array.from({ length: count }, () => createTask(queue, { httpRequest: { url } })));
      await waitUntil(() => target.received('/rate').length === count, {
        what: 'all rate-limited tasks',
        timeoutMs: 15_000,
      });

      const times = target.received('/rate').map((r) => r.receivedAt);
      // Token bucket: any run of arrivals fits in the burst plus what the rate refills meanwhile.
      // Two tokens (0.2 s) of slack absorb event-loop stalls on a loaded machine; an unlimited queue sends all 14 at once.
      const slack = 2;
      for (let i = 0; i < count; i++) {
        for (let j = i + 1; j < count; j++) {
          const allowed = burst + slack + (rate * (times[j]! - times[i]!)) / 1000;
          expect(j - i + 1).toBeLessThanOrEqual(allowed);
        }
      }
      const elapsed = times.at(-1)! - times[0]!;
      expect(elapsed).toBeGreaterThanOrEqual(((count - burst - slack) * 1000) / rate);
      expect(elapsed).toBeLessThan(((count - burst) * 1000) / rate + 1500);
    });

    test('an oidcToken adds a bearer JWT whose aud defaults to the URL and whose email is the service account', async () => {
      const queue = await createQueue('oidc');
      const email = 'invoker@spine-test.iam.gserviceaccount.com';
      const defaultUrl = target.script('/oidc-default', { status: 200 });
      const customUrl = target.script('/oidc-custom', { status: 200 });
      await createTask(queue, {
        httpRequest: {
          url: defaultUrl,
          headers: { Authorization: 'Basic dropped' },
          oidcToken: { serviceAccountEmail: email },
        },
      });
      await createTask(queue, {
        httpRequest: { url: customUrl, oidcToken: { serviceAccountEmail: email, audience: 'https://spine.example' } },
      });
      await waitUntil(
        () => target.received('/oidc-default').length === 1 && target.received('/oidc-custom').length === 1,
        {
          what: 'both OIDC requests',
        },
      );

      const claimsOf = (path: string) => {
        const authorization = target.received(path)[0]!.headers.authorization ?? '';
        expect(authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.$/);
        const token = authorization.slice('Bearer '.length);
        expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toEqual({
          alg: 'none',
          typ: 'JWT',
        });
        return decodeIdTokenClaims(token);
      };
      const now = Date.now() / 1000;
      const claims = claimsOf('/oidc-default');
      expect(claims).toMatchObject({
        aud: defaultUrl,
        email,
        email_verified: true,
        iss: 'https://accounts.google.com',
      });
      expect(claims.iat as number).toBeLessThanOrEqual(now + 1);
      expect(claims.exp as number).toBeGreaterThan(now);
      expect(claimsOf('/oidc-custom')).toMatchObject({ aud: 'https://spine.example', email });
    });

    test('a request exceeding dispatchDeadline is aborted, counted as a failure and retried', async () => {
      const queue = await createQueue('deadline', { retryConfig: { minBackoff: { nanos: 100_000_000 } } });
      const url = target.script('/deadline', 'hang', { status: 200 });
      const task = await createTask(queue, {
        name: `${queue}/tasks/slow`,
        httpRequest: { url },
        dispatchDeadline: { nanos: 300_000_000 },
      });
      await waitUntil(() => taskGone(task.name!), { what: 'the retry to succeed' });

      const [first, second] = target.received('/deadline');
      expect(first!.abortedAt).toBeDefined();
      // Deadline 0.3 s from sending (a little before arrival here), then 0.1 s of backoff; loose bounds for loaded machines.
      expect(first!.abortedAt! - first!.receivedAt).toBeGreaterThanOrEqual(200);
      expect(first!.abortedAt! - first!.receivedAt).toBeLessThan(2000);
      expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(300);
      // A deadline is no response: not an execution, and no previous response code.
      expect(second!.headers).toMatchObject({
        'x-cloudtasks-taskretrycount': '1',
        'x-cloudtasks-taskexecutioncount': '0',
      });
      expect(second!.headers['x-cloudtasks-taskpreviousresponse']).toBeUndefined();
      expect(queueStats(queue)).toMatchObject({ dispatched: 2, failedAttempts: 1, succeeded: 1 });
    });

    test('a task failing maxAttempts times is dropped (deleted), and its name stays taken', async () => {
      const queue = await createQueue('exhaust', {
        retryConfig: { maxAttempts: 3, minBackoff: { nanos: 50_000_000 }, maxBackoff: { nanos: 200_000_000 } },
      });
      const url = target.script('/exhaust', { status: 503 });
      const task = await createTask(queue, { name: `${queue}/tasks/doomed`, httpRequest: { url } });
      await waitUntil(() => queueStats(queue).dropped === 1, { what: 'the task to be dropped' });

      expect(target.received('/exhaust')).toHaveLength(3);
      expect(queueStats(queue)).toMatchObject({
        dispatched: 3,
        failedAttempts: 3,
        retried: 2,
        dropped: 1,
        tasks: 0,
        droppedTasks: [task.name],
      });
      expect(emulator.stats().totals.dropped).toBeGreaterThanOrEqual(1);
      expect(logger.entries.some((e) => e.message.includes('dropped') && e.fields.queue === queue)).toBe(true);
      expect((await rpcError(client.getTask({ name: task.name! }))).code).toBe(status.NOT_FOUND);
      expect((await rpcError(createTask(queue, { name: task.name!, httpRequest: { url } }))).code).toBe(
        status.ALREADY_EXISTS,
      );
    });
  });
});

describe('Cloud Tasks emulator options', () => {
  test('a queue name can be reused at once when queueNameReuseMs is 0; task names when taskNameReuseMs is 0', async () => {
    const emulator = await startTasksEmulator({
      logger: createMemoryLogger(),
      queueNameReuseMs: 0,
      taskNameReuseMs: 0,
    });
    const client = new CloudTasksClient(emulator.clientOptions());
    try {
      const name = `${parent}/queues/reuse-${runId}`;
      await client.createQueue({ parent, queue: { name } });
      await client.pauseQueue({ name });
      const task = { name: `${name}/tasks/again`, httpRequest: { url: 'http://127.0.0.1:9/unused' } };
      await client.createTask({ parent: name, task });
      await client.deleteTask({ name: task.name });
      await client.createTask({ parent: name, task });
      await client.deleteQueue({ name });
      const [recreated] = await client.createQueue({ parent, queue: { name } });
      expect(recreated.name).toBe(name);
    } finally {
      await client.close();
      await emulator.stop();
    }
  });

  test('bad options fail at start naming the setting', async () => {
    await expect(startTasksEmulator({ port: 70000 })).rejects.toThrow(/port/);
    await expect(startTasksEmulator({ taskNameReuseMs: -1 })).rejects.toThrow(/taskNameReuseMs/);
  });
});
