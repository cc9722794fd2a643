/**
 * The health job end to end: its handler serves HTTP in this process (through the Functions
 * Framework's own server) with the dependencies a deployment builds from the runtime, against
 * the running local mesh, while materialize runs in the mesh's functions process.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Message, Subscription } from '@google-cloud/pubsub';
import { CANARY_NETWORK, REGISTRY_NETWORK } from '../../shared/system';
import { eventually } from 'super-spine/testing';
import { createHealthDependencies, createHealthHandler } from '../../functions/health/handler';
import { createRuntime, type FunctionRuntime } from '../../functions/runtime';
import { LATEST_HEALTH_REPORT, type HealthReport } from '../../shared/health';
import { createTasksClient } from '../../shared/mesh/clients';
import { DeadLetterStore } from '../../shared/mesh/dead-letters';
import { createMemoryLogger } from '../helpers/emulators';
import { useLocalMesh } from '../helpers/mesh';

jest.setTimeout(240_000);

const mesh = useLocalMesh();

const CANARY_DEADLINE_MS = 5_000;
const OFFLINE_AFTER_MS = 2_000;

describe('the health job', () => {
  const logger = createMemoryLogger();
  let runtime: FunctionRuntime;
  let deps: ReturnType<typeof createHealthDependencies>;
  let server: Server;
  let url: string;
  let healthSubscription: Subscription;
  const published: HealthReport[] = [];

  beforeAll(async () => {
    runtime = createRuntime(mesh.mesh.env);
    deps = createHealthDependencies(
      { ...runtime, logger },
      {
        SPINE_HEALTH_CANARY_DEADLINE_MS: String(CANARY_DEADLINE_MS),
        SPINE_HEALTH_OFFLINE_AFTER_MS: String(OFFLINE_AFTER_MS),
      },
    );
    functions.http('health-e2e', createHealthHandler(deps));
    server = getTestServer('health-e2e');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    [healthSubscription] = await mesh.pubsub
      .topic(mesh.mesh.topology.topics.health.name)
      .createSubscription(`health-e2e-${randomUUID().slice(0, 8)}`);
    healthSubscription.on('message', (message: Message) => {
      published.push(JSON.parse(message.data.toString('utf8')) as HealthReport);
      message.ack();
    });
  });

  afterAll(async () => {
    await healthSubscription?.close();
    await healthSubscription?.delete().catch(() => undefined);
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await deps?.close();
    await runtime?.close();
  });

  async function runHealth(method = 'POST'): Promise<{ status: number; report: HealthReport }> {
    const response = await fetch(url, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(method === 'POST' && { body: '{}' }),
    });
    return { status: response.status, report: (await response.json()) as HealthReport };
  }

  async function latestInBucket(): Promise<HealthReport> {
    const [bytes] = await mesh.storage.bucket(mesh.mesh.settings.bucket).file(LATEST_HEALTH_REPORT).download();
    return JSON.parse(bytes.toString('utf8')) as HealthReport;
  }

  it('answers 200 with a healthy report while the mesh is up, with canary latencies measured', async () => {
    const { status, report } = await runHealth();
    expect({ status, failing: report.failing, problems: report.problems }).toEqual({
      status: 200,
      failing: [],
      problems: expect.any(Array),
    });
    expect(report.status).toBe('healthy');
    expect(report.checks.canary).toEqual({
      ok: true,
      materializedMs: expect.any(Number),
      announcedMs: expect.any(Number),
    });
    expect(report.checks.canary.materializedMs).toBeGreaterThan(0);
    expect(report.checks.canary.announcedMs).toBeGreaterThan(0);
    expect(report.checks.canary.materializedMs).toBeLessThan(CANARY_DEADLINE_MS);
    expect(report.thresholds).toEqual({
      canaryDeadlineMs: CANARY_DEADLINE_MS,
      offlineAfterMs: OFFLINE_AFTER_MS,
      maxDeadLetters: null,
      maxBatchAgeMs: 600_000,
    });
    // GET (an uptime check) runs the same job.
    expect((await runHealth('GET')).status).toBe(200);
    expect((await fetch(url, { method: 'DELETE' })).status).toBe(405);
  });

  it('stores the report as health/latest.json and health/{checkedAt}.json, and publishes it on the health topic', async () => {
    const { report } = await runHealth();
    expect(await latestInBucket()).toEqual(report);
    const [timestamped] = await mesh.storage
      .bucket(mesh.mesh.settings.bucket)
      .file(`health/${report.checkedAt}.json`)
      .download();
    expect(JSON.parse(timestamped.toString('utf8'))).toEqual(report);
    await eventually(() => expect(published.find((p) => p.checkedAt === report.checkedAt)).toEqual(report), {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
  });

  it('counts dead letters as a warning, not a failure', async () => {
    const deadLetters = new DeadLetterStore(mesh.storage, mesh.mesh.settings.bucket);
    const before = await deadLetters.count();
    const marker = randomUUID();
    await mesh.pubsub.topic(mesh.mesh.topology.topics.contactWrites.name, { messageOrdering: true }).publishMessage({
      data: Buffer.from(`{"not":"an event","marker":"${marker}"}`),
      attributes: { path: `bad/${marker}` },
      orderingKey: `bad/${marker}`,
    });
    await eventually(async () => expect(await deadLetters.count()).toBe(before + 1), {
      timeoutMs: 30_000,
      intervalMs: 250,
    });
    const { status, report } = await runHealth();
    expect(report.checks.deadLetters).toEqual({ ok: false, count: before + 1 });
    expect(report.warnings).toContain('deadLetters');
    expect(report.problems).toContain(`deadLetters: ${before + 1} waiting`);
    expect([status, report.status, report.failing]).toEqual([200, 'healthy', []]);
  });

  it('lists an agent online after its heartbeat and offline once its heartbeat is older than the threshold', async () => {
    const spine = mesh.client();
    const early = `agent-early-${randomUUID().slice(0, 8)}`;
    await spine.heartbeat(early, 'working', { wait: 'materialized' });
    const first = (await runHealth()).report;
    expect(first.checks.agents.find((a) => a.agentId === early)).toMatchObject({
      agentId: early,
      status: 'working',
      online: true,
    });

    // Poll until its heartbeat has aged past the threshold; the report is what is asserted on.
    const later = await eventually(
      async () => {
        const { report } = await runHealth();
        expect(report.checks.agents.find((a) => a.agentId === early)?.online).toBe(false);
        return report;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    const agent = later.checks.agents.find((a) => a.agentId === early)!;
    expect(agent.ageMs).toBeGreaterThan(OFFLINE_AFTER_MS);
    expect(Date.parse(agent.lastHeartbeat)).toBe(
      Date.parse(first.checks.agents.find((a) => a.agentId === early)!.lastHeartbeat),
    );

    const fresh = `agent-fresh-${randomUUID().slice(0, 8)}`;
    await spine.heartbeat(fresh, 'idle', { wait: 'materialized' });
    const { status, report } = await runHealth();
    expect(report.checks.agents.find((a) => a.agentId === fresh)).toMatchObject({ status: 'idle', online: true });
    expect(report.checks.agents.find((a) => a.agentId === early)).toMatchObject({ status: 'working', online: false });
    expect(report.warnings).toContain('agents');
    expect(report.problems.some((p) => p.startsWith('agents:') && p.includes(early) && !p.includes(fresh))).toBe(true);
    // Offline agents are reported, not a failure.
    expect([status, report.failing]).toEqual([200, []]);
  });

  it("reports each network's last snapshot, null when never snapshotted, leaving out the system networks", async () => {
    const spine = mesh.client();
    const network = `snapped-${randomUUID().slice(0, 8)}`;
    await spine.saveContactContent(network, 'g', 'c', 1, { wait: 'materialized' });
    const before = (await runHealth()).report;
    expect(before.checks.snapshots.networks.find((n) => n.networkId === network)).toEqual({
      networkId: network,
      lastSnapshotAt: null,
      ageMs: null,
    });
    // The system networks exist (earlier runs wrote the canary and heartbeats) and are left out.
    expect(await runtime.state.listNetworks()).toEqual(expect.arrayContaining([CANARY_NETWORK, REGISTRY_NETWORK]));
    expect(before.checks.snapshots.networks.map((n) => n.networkId)).not.toEqual(
      expect.arrayContaining([CANARY_NETWORK]),
    );
    expect(before.checks.snapshots.networks.map((n) => n.networkId)).not.toEqual(
      expect.arrayContaining([REGISTRY_NETWORK]),
    );

    await runtime.state.saveSnapshot(network, 'health-test');
    const [snapshot] = await runtime.state.listSnapshots(network);
    const { report } = await runHealth();
    const entry = report.checks.snapshots.networks.find((n) => n.networkId === network)!;
    expect(entry.lastSnapshotAt).toBe(snapshot!.createdAt.toISOString());
    expect(entry.ageMs).toBeGreaterThanOrEqual(0);
    expect(entry.ageMs).toBeLessThanOrEqual(Date.parse(report.checkedAt) - snapshot!.createdAt.getTime() + 1);
  });

  it('reports the oldest batch flush waiting in the persist queue, and none once it is gone', async () => {
    const tasks = createTasksClient(mesh.mesh.settings);
    try {
      const queue = tasks.queuePath(
        mesh.mesh.settings.projectId,
        mesh.mesh.settings.tasksLocation,
        mesh.mesh.topology.queues.persist.name,
      );
      const empty = (await runHealth()).report.checks.pendingBatches;
      expect(empty).toEqual({ ok: true, oldestAgeMs: null, count: 0 });

      const inAnHour = Math.floor(Date.now() / 1000) + 3600;
      const [task] = await tasks.createTask({
        parent: queue,
        task: {
          scheduleTime: { seconds: inAnHour },
          httpRequest: {
            url: mesh.mesh.functions.urls.persist!,
            httpMethod: 'POST',
            body: Buffer.from('{"all":true}'),
          },
        },
      });
      const createdAt = Number(task.createTime!.seconds) * 1000 + Math.floor((task.createTime!.nanos ?? 0) / 1e6);
      const { report } = await eventually(
        async () => {
          const run = await runHealth();
          expect(run.report.checks.pendingBatches.oldestAgeMs).toBeGreaterThan(0);
          return run;
        },
        { timeoutMs: 10_000, intervalMs: 100 },
      );
      expect(report.checks.pendingBatches).toEqual({ ok: true, oldestAgeMs: expect.any(Number), count: 1 });
      expect(report.checks.pendingBatches.oldestAgeMs).toBeLessThanOrEqual(
        Date.parse(report.checkedAt) - createdAt + 1,
      );
      expect(report.checks.pendingBatches.oldestAgeMs).toBeGreaterThanOrEqual(
        Date.parse(report.checkedAt) - createdAt - 1,
      );

      await tasks.deleteTask({ name: task.name! });
      expect((await runHealth()).report.checks.pendingBatches).toEqual({ ok: true, oldestAgeMs: null, count: 0 });
    } finally {
      await tasks.close();
    }
  });

  it('answers 503 naming the canary within one run when materialize is stopped, and 200 again once it is back', async () => {
    await mesh.mesh.functions.stop();
    try {
      const started = Date.now();
      const { status, report } = await runHealth();
      expect(status).toBe(503);
      expect(report.status).toBe('unhealthy');
      expect(report.failing).toEqual(['canary']);
      expect(report.checks.canary).toEqual({
        ok: false,
        materializedMs: null,
        announcedMs: null,
        error: `canary not materialized within ${CANARY_DEADLINE_MS} ms`,
      });
      expect(report.problems).toContain(`canary: canary not materialized within ${CANARY_DEADLINE_MS} ms`);
      // One run, bounded by the deadline (plus the other checks and the report's delivery).
      expect(Date.now() - started).toBeLessThan(CANARY_DEADLINE_MS + 10_000);
      // The unhealthy report is delivered like any other.
      expect((await latestInBucket()).checkedAt).toBe(report.checkedAt);
      await eventually(
        () => expect(published.find((p) => p.checkedAt === report.checkedAt)?.status).toBe('unhealthy'),
        { timeoutMs: 20_000, intervalMs: 100 },
      );
    } finally {
      await mesh.mesh.restartFunctions();
    }

    const recovered = await eventually(
      async () => {
        const run = await runHealth();
        expect(run.status).toBe(200);
        return run.report;
      },
      { timeoutMs: 150_000, intervalMs: 500 },
    );
    expect(recovered.checks.canary.ok).toBe(true);
    expect(recovered.failing).toEqual([]);
  });
});
