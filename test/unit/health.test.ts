/**
 * The health job without servers: settings, the canary's timing and failure modes, grading,
 * the other checks over in-memory state, and the handler's answers over HTTP.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Storage } from '@google-cloud/storage';
import { MemoryStorage, type SubscriptionCallback, type Unsubscribe } from 'super-spine';
import { createHealthHandler, type HealthHandlerDependencies } from '../../functions/health/handler';
import {
  CANARY_CONTACT,
  checkCanary,
  grade,
  loadHealthSettings,
  readHealthAnswer,
  runHealthChecks,
  validateHealthSettings,
  type CanaryClient,
  type HealthCheckDependencies,
  type HealthReport,
  type HealthSettings,
} from '../../shared/health';
import {
  AGENTS_GROUP,
  CANARY_GROUP,
  CANARY_NETWORK,
  DEFAULT_OFFLINE_AFTER_MS,
  REGISTRY_NETWORK,
} from '../../shared/system';
import { createMemoryLogger } from '../helpers/emulators';

const quiet = createMemoryLogger();
const SETTINGS: HealthSettings = {
  canaryDeadlineMs: 300,
  offlineAfterMs: 60_000,
  maxDeadLetters: null,
  maxBatchAgeMs: 60_000,
};

/** A canary client over in-memory state: a write is materialized at once and announced to watchers, unless told otherwise. */
function memoryCanary(
  state: MemoryStorage,
  behaviour: { materialize?: boolean; announce?: boolean; failWrite?: Error; subscribeDelayMs?: number } = {},
) {
  const { materialize = true, announce = true } = behaviour;
  const watchers = new Set<SubscriptionCallback>();
  const calls = { subscribed: 0, unsubscribed: 0, writes: [] as unknown[] };
  const client: CanaryClient = {
    async subscribe(path, callback): Promise<Unsubscribe> {
      expect(path).toBe(`${CANARY_NETWORK}/${CANARY_GROUP}`);
      if (behaviour.subscribeDelayMs) await new Promise((resolve) => setTimeout(resolve, behaviour.subscribeDelayMs));
      calls.subscribed += 1;
      watchers.add(callback);
      return async () => {
        calls.unsubscribed += 1;
        watchers.delete(callback);
      };
    },
    async saveContactContent(networkId, groupId, contactId, content, options) {
      calls.writes.push(content);
      if (behaviour.failWrite) throw behaviour.failWrite;
      if (!materialize) return new Promise<void>(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 5));
      await state.saveContactContent(networkId, groupId, contactId, content);
      if (announce) {
        const group = await state.loadGroupState(networkId, groupId);
        setTimeout(
          () =>
            watchers.forEach(
              (w) =>
                void w(group, {
                  networkId,
                  groupId,
                  path: `${networkId}/${groupId}`,
                  kind: 'updated',
                  time: new Date(),
                }),
            ),
          5,
        );
      }
      expect(options).toEqual({ wait: 'materialized', timeoutMs: expect.any(Number) });
    },
  };
  return { client, calls, watchers };
}

function deps(state: MemoryStorage, overrides: Partial<HealthCheckDependencies> = {}): HealthCheckDependencies {
  return {
    canary: memoryCanary(state).client,
    state,
    deadLetters: { count: async () => 0 },
    pendingBatches: { createTimes: async () => [] },
    settings: SETTINGS,
    logger: quiet,
    ...overrides,
  };
}

describe('health settings', () => {
  it('has defaults, reads SPINE_HEALTH_* and refuses bad values naming the setting', () => {
    expect(loadHealthSettings({})).toEqual({
      canaryDeadlineMs: 10_000,
      offlineAfterMs: DEFAULT_OFFLINE_AFTER_MS,
      maxDeadLetters: null,
      maxBatchAgeMs: 600_000,
    });
    expect(
      loadHealthSettings({
        SPINE_HEALTH_CANARY_DEADLINE_MS: '2500',
        SPINE_HEALTH_OFFLINE_AFTER_MS: '2000',
        SPINE_HEALTH_MAX_DEAD_LETTERS: '0',
        SPINE_HEALTH_MAX_BATCH_AGE_MS: '1000',
      }),
    ).toEqual({ canaryDeadlineMs: 2500, offlineAfterMs: 2000, maxDeadLetters: 0, maxBatchAgeMs: 1000 });
    expect(() => loadHealthSettings({ SPINE_HEALTH_CANARY_DEADLINE_MS: '0' })).toThrow(
      'setting SPINE_HEALTH_CANARY_DEADLINE_MS="0" is invalid',
    );
    expect(() => loadHealthSettings({ SPINE_HEALTH_CANARY_DEADLINE_MS: '200000' })).toThrow(
      /SPINE_HEALTH_CANARY_DEADLINE_MS.*from 1 to 100000/,
    );
    expect(() => loadHealthSettings({ SPINE_HEALTH_OFFLINE_AFTER_MS: '5m' })).toThrow('SPINE_HEALTH_OFFLINE_AFTER_MS');
    expect(() => loadHealthSettings({ SPINE_HEALTH_MAX_DEAD_LETTERS: '-1' })).toThrow('SPINE_HEALTH_MAX_DEAD_LETTERS');
    expect(() => loadHealthSettings({ SPINE_HEALTH_MAX_BATCH_AGE_MS: '1.5' })).toThrow('SPINE_HEALTH_MAX_BATCH_AGE_MS');
    expect(() => validateHealthSettings({ ...SETTINGS, offlineAfterMs: 0 })).toThrow(
      'health setting offlineAfterMs must be a whole number from 1',
    );
    expect(() =>
      createHealthHandler({ settings: { ...SETTINGS, canaryDeadlineMs: -1 } } as HealthHandlerDependencies),
    ).toThrow('canaryDeadlineMs');
  });
});

describe('the canary', () => {
  it('measures materialization and announcement, and removes its watch', async () => {
    const state = new MemoryStorage();
    const { client, calls } = memoryCanary(state);
    const result = await checkCanary(client, 1_000);
    expect(result).toEqual({ ok: true, materializedMs: expect.any(Number), announcedMs: expect.any(Number) });
    expect(result.announcedMs).toBeGreaterThanOrEqual(result.materializedMs!);
    expect(calls).toMatchObject({ subscribed: 1, unsubscribed: 1 });
    // A unique value each run.
    await checkCanary(client, 1_000);
    expect(calls.writes).toHaveLength(2);
    expect(calls.writes[0]).not.toEqual(calls.writes[1]);
    expect((await state.loadContactContent(CANARY_NETWORK, CANARY_GROUP, CANARY_CONTACT)) as object).toEqual(
      calls.writes[1],
    );
  });

  it('fails at the deadline when the write is not materialized', async () => {
    const { client, calls } = memoryCanary(new MemoryStorage(), { materialize: false });
    const started = Date.now();
    expect(await checkCanary(client, 200)).toEqual({
      ok: false,
      materializedMs: null,
      announcedMs: null,
      error: 'canary not materialized within 200 ms',
    });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(calls.unsubscribed).toBe(1);
  });

  it('fails when the write is materialized but never announced', async () => {
    const result = await checkCanary(memoryCanary(new MemoryStorage(), { announce: false }).client, 200);
    expect(result).toMatchObject({
      ok: false,
      announcedMs: null,
      error: expect.stringMatching(/^canary materialized after \d+ ms but not announced within 200 ms$/),
    });
    expect(result.materializedMs).toEqual(expect.any(Number));
  });

  it('fails at once when the write is refused', async () => {
    const started = Date.now();
    const result = await checkCanary(
      memoryCanary(new MemoryStorage(), { failWrite: new Error('publishing failed (status 14)') }).client,
      5_000,
    );
    expect(result).toEqual({
      ok: false,
      materializedMs: null,
      announcedMs: null,
      error: 'canary write failed: publishing failed (status 14)',
    });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('fails when its watch cannot be set up in time, and removes the watch once it exists', async () => {
    const { client, calls } = memoryCanary(new MemoryStorage(), { subscribeDelayMs: 300 });
    const result = await checkCanary(client, 100);
    expect(result).toEqual({
      ok: false,
      materializedMs: null,
      announcedMs: null,
      error: expect.stringContaining('canary not published within 100 ms'),
    });
    expect(calls.writes).toHaveLength(0);
    expect(calls).toMatchObject({ subscribed: 1, unsubscribed: 1 });
  });

  it('counts a newer canary (an overlapping run) as seeing its own', async () => {
    const state = new MemoryStorage();
    const { client, watchers } = memoryCanary(state, { announce: false });
    const running = checkCanary(client, 1_000);
    // Another run's canary, written after this one, is what the watch sees.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await state.saveContactContent(CANARY_NETWORK, CANARY_GROUP, CANARY_CONTACT, {
      id: 'other-run',
      sentAt: new Date(Date.now() + 1_000).toISOString(),
    });
    const group = await state.loadGroupState(CANARY_NETWORK, CANARY_GROUP);
    watchers.forEach(
      (w) =>
        void w(group, {
          networkId: CANARY_NETWORK,
          groupId: CANARY_GROUP,
          path: `${CANARY_NETWORK}/${CANARY_GROUP}`,
          kind: 'updated',
          time: new Date(),
        }),
    );
    expect(await running).toMatchObject({ ok: true });
  });
});

describe('grading', () => {
  const healthy: HealthReport['checks'] = {
    canary: { ok: true, materializedMs: 10, announcedMs: 12 },
    deadLetters: { ok: true, count: 0 },
    pendingBatches: { ok: true, oldestAgeMs: null, count: 0 },
    snapshots: { networks: [] },
    agents: [],
  };

  it('is healthy with every check ok', () => {
    expect(grade(healthy, SETTINGS)).toEqual({ status: 'healthy', failing: [], warnings: [], problems: [] });
  });

  it('fails on the canary and on an old pending batch', () => {
    const graded = grade(
      {
        ...healthy,
        canary: { ok: false, materializedMs: null, announcedMs: null, error: 'canary not materialized within 300 ms' },
        pendingBatches: { ok: false, oldestAgeMs: 70_000, count: 3 },
      },
      SETTINGS,
    );
    expect(graded).toEqual({
      status: 'unhealthy',
      failing: ['canary', 'pendingBatches'],
      warnings: [],
      problems: [
        'canary: canary not materialized within 300 ms',
        'pendingBatches: the oldest of 3 batch flushes has waited 70000 ms, over 60000 ms',
      ],
    });
  });

  it('warns on dead letters, and fails only above maxDeadLetters', () => {
    const some = { ...healthy, deadLetters: { ok: false, count: 3 } };
    expect(grade(some, SETTINGS)).toMatchObject({
      status: 'healthy',
      failing: [],
      warnings: ['deadLetters'],
      problems: ['deadLetters: 3 waiting'],
    });
    expect(grade(some, { ...SETTINGS, maxDeadLetters: 3 })).toMatchObject({
      status: 'healthy',
      warnings: ['deadLetters'],
      problems: ['deadLetters: 3 waiting (unhealthy above 3)'],
    });
    expect(grade(some, { ...SETTINGS, maxDeadLetters: 2 })).toMatchObject({
      status: 'unhealthy',
      failing: ['deadLetters'],
      warnings: [],
      problems: ['deadLetters: 3 waiting, over the limit of 2'],
    });
  });

  it('warns on offline agents, an unreadable registry and unlistable snapshots, without failing', () => {
    const graded = grade(
      {
        ...healthy,
        snapshots: { networks: [], error: 'networks could not be listed: boom' },
        agents: [
          { agentId: 'a', status: 'ok', lastHeartbeat: '2026-01-01T00:00:00.000Z', ageMs: 120_000, online: false },
          { agentId: 'b', status: 'ok', lastHeartbeat: '2026-01-01T00:01:59.000Z', ageMs: 1_000, online: true },
        ],
      },
      SETTINGS,
    );
    expect(graded).toEqual({
      status: 'healthy',
      failing: [],
      warnings: ['snapshots', 'agents'],
      problems: [
        'snapshots: networks could not be listed: boom',
        'agents: 1 offline (no heartbeat for over 60000 ms): a',
      ],
    });
    expect(grade(healthy, SETTINGS, 'the agent registry could not be read: boom')).toMatchObject({
      warnings: ['agents'],
      problems: ['agents: the agent registry could not be read: boom'],
    });
  });
});

describe('runHealthChecks', () => {
  const now = new Date('2026-11-21T12:00:00.000Z');

  it('reports snapshot ages without the system networks, the agent registry, dead letters and pending batches', async () => {
    const state = new MemoryStorage();
    await state.saveContactContent('never', 'g', 'c', 1);
    await state.saveContactContent('snapped', 'g', 'c', 1);
    const snapshotId = await state.saveSnapshot('snapped');
    const snapshot = (await state.listSnapshots('snapped')).find((s) => s.id === snapshotId)!;
    const beat = (agentId: string, at: Date, status = 'ok') =>
      state.saveContactContent(REGISTRY_NETWORK, AGENTS_GROUP, agentId, { agentId, status, at: at.toISOString() });
    await beat('fresh', new Date(now.getTime() - 1_000), 'working');
    await beat('stale', new Date(now.getTime() - 61_000));
    await beat('ahead', new Date(now.getTime() + 5_000));
    await state.saveContactContent(REGISTRY_NETWORK, AGENTS_GROUP, 'garbage', 'not a heartbeat');

    const report = await runHealthChecks(
      deps(state, {
        now: () => now,
        deadLetters: { count: async () => 2 },
        pendingBatches: {
          createTimes: async () => [new Date(now.getTime() - 5_000), new Date(now.getTime() - 30_000)],
        },
      }),
    );
    expect(report).toMatchObject({
      version: 1,
      status: 'healthy',
      checkedAt: now.toISOString(),
      failing: [],
      warnings: ['deadLetters', 'agents'],
      thresholds: SETTINGS,
    });
    expect(report.checks.deadLetters).toEqual({ ok: false, count: 2 });
    expect(report.checks.pendingBatches).toEqual({ ok: true, oldestAgeMs: 30_000, count: 2 });
    // The canary wrote its network, the heartbeats the registry: both exist, neither is listed.
    expect(await state.listNetworks()).toEqual(expect.arrayContaining([CANARY_NETWORK, REGISTRY_NETWORK]));
    expect(report.checks.snapshots).toEqual({
      networks: [
        { networkId: 'never', lastSnapshotAt: null, ageMs: null },
        {
          networkId: 'snapped',
          lastSnapshotAt: snapshot.createdAt.toISOString(),
          ageMs: Math.max(0, now.getTime() - snapshot.createdAt.getTime()),
        },
      ],
    });
    expect(report.checks.agents).toEqual([
      {
        agentId: 'ahead',
        status: 'ok',
        lastHeartbeat: new Date(now.getTime() + 5_000).toISOString(),
        ageMs: 0,
        online: true,
      },
      {
        agentId: 'fresh',
        status: 'working',
        lastHeartbeat: new Date(now.getTime() - 1_000).toISOString(),
        ageMs: 1_000,
        online: true,
      },
      {
        agentId: 'stale',
        status: 'ok',
        lastHeartbeat: new Date(now.getTime() - 61_000).toISOString(),
        ageMs: 61_000,
        online: false,
      },
    ]);
  });

  it('keeps going when a check cannot run, reporting why', async () => {
    const state = new MemoryStorage();
    const report = await runHealthChecks(
      deps(state, {
        deadLetters: { count: async () => Promise.reject(new Error('bucket gone')) },
        pendingBatches: { createTimes: async () => Promise.reject(new Error('queue gone')) },
      }),
    );
    expect(report.checks.deadLetters).toEqual({
      ok: false,
      count: null,
      error: 'dead letters could not be counted: bucket gone',
    });
    expect(report.checks.pendingBatches).toEqual({
      ok: false,
      oldestAgeMs: null,
      count: null,
      error: 'the persist queue could not be listed: queue gone',
    });
    expect(report.checks.canary.ok).toBe(true);
    expect(report).toMatchObject({ status: 'unhealthy', failing: ['pendingBatches'], warnings: ['deadLetters'] });
  });
});

describe('the health function over HTTP', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  });

  /** Serves a handler with in-memory state; the bucket and the topic are recorded. */
  async function serve(name: string, overrides: Partial<HealthHandlerDependencies> = {}, failStore = false) {
    const state = new MemoryStorage();
    const objects = new Map<string, string>();
    const messages: Array<{ data: Buffer; attributes: Record<string, string> }> = [];
    const storage = {
      bucket: (bucket: string) => ({
        file: (object: string) => ({
          save: async (body: string) => {
            if (failStore) throw new Error('503 backend unavailable');
            objects.set(`${bucket}/${object}`, body);
          },
        }),
      }),
    } as unknown as Storage;
    const handlerDeps: HealthHandlerDependencies = {
      ...deps(state),
      storage,
      bucket: 'state-bucket',
      healthTopic: {
        publishMessage: (async (message: { data: Buffer; attributes: Record<string, string> }) => (
          messages.push(message),
          'id-1'
        )) as never,
      },
      logger: quiet,
      ...overrides,
    };
    functions.http(name, createHealthHandler(handlerDeps));
    const server = getTestServer(name);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const call = async (method = 'POST') => {
      const response = await fetch(url, {
        method,
        ...(method === 'POST' && { headers: { 'content-type': 'application/octet-stream' }, body: '{}' }),
      });
      return { status: response.status, body: (await response.json()) as Record<string, any> };
    };
    return { call, objects, messages };
  }

  it('answers 200 with the report, stores it twice and publishes it', async () => {
    const { call, objects, messages } = await serve('health-unit-ok');
    const { status, body } = await call();
    expect([status, body.status]).toEqual([200, 'healthy']);
    expect(JSON.parse(objects.get('state-bucket/health/latest.json')!)).toEqual(body);
    expect(JSON.parse(objects.get(`state-bucket/health/${body.checkedAt}.json`)!)).toEqual(body);
    expect(messages).toHaveLength(1);
    expect(JSON.parse(messages[0]!.data.toString())).toEqual(body);
    expect(messages[0]!.attributes).toEqual({ status: 'healthy', checkedAt: body.checkedAt });
    expect((await call('GET')).status).toBe(200);
    expect((await call('PUT')).status).toBe(405);
    // What its clients (spine health, the dashboard) read from the answer.
    expect(readHealthAnswer(status, JSON.stringify(body))).toEqual({ report: body });
  });

  it('answers 503 naming the failing checks, and still delivers the report', async () => {
    const state = new MemoryStorage();
    const { call, objects, messages } = await serve('health-unit-unhealthy', {
      canary: memoryCanary(state, { materialize: false }).client,
    });
    const { status, body } = await call();
    expect(status).toBe(503);
    expect(body).toMatchObject({
      status: 'unhealthy',
      failing: ['canary'],
      problems: ['canary: canary not materialized within 300 ms'],
    });
    expect(JSON.parse(objects.get('state-bucket/health/latest.json')!).status).toBe('unhealthy');
    expect(messages.map((m) => m.attributes.status)).toEqual(['unhealthy']);
  });

  it('answers 500 when the report cannot be stored, with the report in the body, and still publishes it', async () => {
    const { call, messages } = await serve('health-unit-undelivered', {}, true);
    const { status, body } = await call();
    expect(status).toBe(500);
    expect(body.error).toEqual({
      code: 'INTERNAL',
      message: 'the health report could not be stored in bucket state-bucket: 503 backend unavailable',
    });
    expect(body.report).toMatchObject({ status: 'healthy' });
    expect(messages).toHaveLength(1);
    expect(readHealthAnswer(status, JSON.stringify(body))).toEqual({
      undeliveredReport: body.report,
      error: 'failed (500): the health report could not be stored in bucket state-bucket: 503 backend unavailable',
    });
    expect(readHealthAnswer(502, '<html>bad gateway</html>')).toEqual({
      error: 'answered 502 with a body that is not JSON: <html>bad gateway</html>',
    });
  });
});
