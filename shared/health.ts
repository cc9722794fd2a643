import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Topic } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { InvalidArgumentError } from './errors';
import { parseSettings } from './settings';
import { DEFAULT_CANARY_DEADLINE_MS, DEFAULT_MAX_BATCH_AGE_MS, MAX_CANARY_DEADLINE_MS } from './settings/table';
import type { Logger } from './log';
import type { GroupState, NetworkStorage, SubscriptionCallback, Unsubscribe } from './model';
import { AGENTS_GROUP, CANARY_GROUP, CANARY_NETWORK, REGISTRY_NETWORK, type Heartbeat } from './system';
import { mapWithConcurrency } from './util/concurrency';

/**
 * The health job: a canary write end to end through the mesh, dead letters, pending batch
 * flushes, snapshot ages and agent liveness, gathered into one `HealthReport`.
 *
 * Severity, per check (a check that cannot be run at all counts as not ok, with its `error`):
 * - `canary` not materialized and announced within `canaryDeadlineMs` → failing.
 * - `pendingBatches` older than `maxBatchAgeMs` → failing: batched writes are not being persisted.
 * - `deadLetters` above zero → warning; above `maxDeadLetters` (when set) → failing.
 * - `agents` offline (last heartbeat older than `offlineAfterMs`) → warning.
 * - `snapshots` ages are reported only: an unchanged network is rightly never snapshotted again.
 * The report is `unhealthy` exactly when `failing` is not empty.
 */

/** Version of the report's shape; raised only when a field changes meaning or goes away. */
export const HEALTH_REPORT_VERSION = 1;
/** Reports are kept in the state bucket under this prefix (the topology's lifecycle deletes them after 7 days). */
export const HEALTH_REPORT_PREFIX = 'health/';
export const LATEST_HEALTH_REPORT = `${HEALTH_REPORT_PREFIX}latest.json`;
/** The contact the canary writes (in `CANARY_NETWORK`/`CANARY_GROUP`). */
export const CANARY_CONTACT = 'probe';
/** Networks the mesh keeps for itself, left out of the snapshot ages. */
export const SYSTEM_NETWORKS: readonly string[] = [REGISTRY_NETWORK, CANARY_NETWORK];

export type HealthCheckName = 'canary' | 'deadLetters' | 'pendingBatches' | 'snapshots' | 'agents';

export interface CanaryCheck {
  /** Materialized and announced, both within the deadline. */
  ok: boolean;
  /** From publishing the canary to its acknowledgement by materialize; `null` when not seen in time. */
  materializedMs: number | null;
  /** From publishing the canary to a subscriber on its path seeing it; `null` when not seen in time. */
  announcedMs: number | null;
  error?: string;
}

export interface DeadLetterCheck {
  /** No dead letter waiting. */
  ok: boolean;
  /** Dead letters not yet replayed; `null` only with `error`. */
  count: number | null;
  error?: string;
}

export interface PendingBatchCheck {
  /** No batch flush has waited longer than `maxBatchAgeMs`. */
  ok: boolean;
  /** Age of the oldest task in the persist queue (since it was created); `null` when the queue is empty. */
  oldestAgeMs: number | null;
  /** Tasks in the persist queue; `null` only with `error`. */
  count: number | null;
  error?: string;
}

export interface NetworkSnapshotAge {
  networkId: string;
  /** ISO time of the newest snapshot; `null` when the network was never snapshotted. */
  lastSnapshotAt: string | null;
  ageMs: number | null;
}

export interface SnapshotCheck {
  /** Every network but the system ones, by id. */
  networks: NetworkSnapshotAge[];
  error?: string;
}

export interface AgentHealth {
  agentId: string;
  /** The status the agent sent with its last heartbeat. */
  status: string;
  /** ISO time of its last heartbeat (the agent's clock). */
  lastHeartbeat: string;
  ageMs: number;
  /** Its last heartbeat is at most `offlineAfterMs` old. */
  online: boolean;
}

export interface HealthThresholds {
  canaryDeadlineMs: number;
  offlineAfterMs: number;
  /** Dead letters above this make the mesh unhealthy; `null`: they only warn. */
  maxDeadLetters: number | null;
  maxBatchAgeMs: number;
}

/**
 * What one run of the health job found: stored as JSON in the state bucket
 * (`health/latest.json` and `health/{checkedAt}.json`), published on the health topic, and
 * the body of the job's HTTP answer. Every time is an ISO string, every duration milliseconds.
 */
export interface HealthReport {
  version: typeof HEALTH_REPORT_VERSION;
  status: 'healthy' | 'unhealthy';
  /** When the run started. */
  checkedAt: string;
  durationMs: number;
  checks: {
    canary: CanaryCheck;
    deadLetters: DeadLetterCheck;
    pendingBatches: PendingBatchCheck;
    snapshots: SnapshotCheck;
    /** Every agent that ever sent a heartbeat, by id. */
    agents: AgentHealth[];
  };
  /** Checks that make the mesh unhealthy; empty when healthy. */
  failing: HealthCheckName[];
  /** Checks that are not ok but leave the mesh healthy. */
  warnings: HealthCheckName[];
  /** One sentence per failing check and warning, for people. */
  problems: string[];
  thresholds: HealthThresholds;
}

// ---- settings

export type HealthSettings = HealthThresholds;

export { DEFAULT_CANARY_DEADLINE_MS, DEFAULT_MAX_BATCH_AGE_MS, MAX_CANARY_DEADLINE_MS };

type Env = Record<string, string | undefined>;

/**
 * The health job's settings from the environment: `SPINE_HEALTH_CANARY_DEADLINE_MS` (10 s),
 * `SPINE_HEALTH_OFFLINE_AFTER_MS` (5 min), `SPINE_HEALTH_MAX_DEAD_LETTERS` (unset: dead letters
 * only warn) and `SPINE_HEALTH_MAX_BATCH_AGE_MS` (10 min). Pure, so tests can inject `env`.
 */
export function loadHealthSettings(env: Env = process.env): HealthSettings {
  const { canaryDeadlineMs, offlineAfterMs, maxDeadLetters, maxBatchAgeMs } = parseSettings('health', { env });
  return { canaryDeadlineMs, offlineAfterMs, maxDeadLetters: maxDeadLetters ?? null, maxBatchAgeMs };
}

/** Checks settings given in code, with errors that name the setting. */
export function validateHealthSettings(settings: HealthSettings): HealthSettings {
  const check = (name: keyof HealthSettings, value: unknown, min: number, max?: number) => {
    if (
      typeof value !== 'number' ||
      !Number.isSafeInteger(value) ||
      value < min ||
      (max !== undefined && value > max)
    ) {
      throw new InvalidArgumentError(
        `health setting ${name} must be a whole number from ${min}${max === undefined ? '' : ` to ${max}`}, not ${JSON.stringify(value)}`,
      );
    }
  };
  if (!settings || typeof settings !== 'object') throw new InvalidArgumentError('health settings are missing');
  check('canaryDeadlineMs', settings.canaryDeadlineMs, 1, MAX_CANARY_DEADLINE_MS);
  check('offlineAfterMs', settings.offlineAfterMs, 1);
  if (settings.maxDeadLetters !== null) check('maxDeadLetters', settings.maxDeadLetters, 0);
  check('maxBatchAgeMs', settings.maxBatchAgeMs, 1);
  return settings;
}

// ---- what the checks read

/** The part of `SpineStorage` the canary uses: writes through the mesh and a watch on the canary's path. */
export interface CanaryClient {
  initialize?(): Promise<void>;
  saveContactContent(
    networkId: string,
    groupId: string,
    contactId: string,
    content: unknown,
    options: { wait: 'materialized'; timeoutMs: number },
  ): Promise<void>;
  subscribe(path: string, callback: SubscriptionCallback): Promise<Unsubscribe>;
}

/** Creation times of the batch flushes waiting in the persist queue. */
export interface PendingBatchSource {
  createTimes(): Promise<Date[]>;
}

export interface HealthCheckDependencies {
  /** Canary writes go through the mesh like any client's (a `SpineStorage`). */
  canary: CanaryClient;
  /** The materialized state: networks, their snapshots and the agent registry. */
  state: Pick<NetworkStorage, 'listNetworks' | 'listSnapshots' | 'loadGroupState'>;
  deadLetters: { count(): Promise<number> };
  pendingBatches: PendingBatchSource;
  settings: HealthSettings;
  logger?: Logger;
  /** The clock the ages are measured by. */
  now?: () => Date;
}

/** The persist queue's tasks, read with `ListTasks` (basic view, every page). */
export function persistQueueBatches(
  tasks: Pick<CloudTasksClient, 'listTasksAsync'>,
  queuePath: string,
): PendingBatchSource {
  return {
    async createTimes() {
      const times: Date[] = [];
      for await (const task of tasks.listTasksAsync({ parent: queuePath, responseView: 'BASIC', pageSize: 1000 })) {
        const time = task.createTime ?? task.scheduleTime;
        if (time) times.push(new Date(Number(String(time.seconds ?? 0)) * 1000 + Math.floor((time.nanos ?? 0) / 1e6)));
      }
      return times;
    },
  };
}

// ---- the checks

const CLEANUP_WAIT_MS = 5_000;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Writes a unique value to the canary contact and measures how long until materialize
 * acknowledges it and until a subscriber on its path sees it. A newer canary (a run that
 * overlaps this one) counts as seeing this one: it travelled the same ordered path behind it.
 */
export async function checkCanary(client: CanaryClient, deadlineMs: number): Promise<CanaryCheck> {
  const began = performance.now();
  const id = randomUUID();
  let sentAt = '';
  let published = Number.POSITIVE_INFINITY;
  let materializedMs: number | null = null;
  let announcedMs: number | null = null;
  let watching: Promise<Unsubscribe> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let markAnnounced!: () => void;
  const announced = new Promise<void>((resolve) => (markAnnounced = resolve));
  const onChange: SubscriptionCallback = (state: GroupState | null) => {
    if (announcedMs !== null || published === Number.POSITIVE_INFINITY) return;
    const content = state?.contacts.get(CANARY_CONTACT)?.content as { id?: unknown; sentAt?: unknown } | undefined;
    if (!content || typeof content !== 'object') return;
    if (content.id === id || (typeof content.sentAt === 'string' && content.sentAt > sentAt)) {
      announcedMs = Math.round(performance.now() - published);
      markAnnounced();
    }
  };
  let expired = false;
  const deadline = new Promise<'deadline'>(
    (resolve) => (timer = setTimeout(() => ((expired = true), resolve('deadline')), deadlineMs)),
  );
  const run = (async () => {
    await client.initialize?.();
    if (expired) return 'deadline' as const;
    watching = client.subscribe(`${CANARY_NETWORK}/${CANARY_GROUP}`, onChange);
    await watching;
    // Too late: a canary published now would only be waited for by nobody.
    if (expired) return 'deadline' as const;
    sentAt = new Date().toISOString();
    published = performance.now();
    const remaining = Math.max(1, deadlineMs - (published - began));
    await Promise.all([
      // The client's own timeout a little after ours, so the deadline below is what decides.
      client
        .saveContactContent(
          CANARY_NETWORK,
          CANARY_GROUP,
          CANARY_CONTACT,
          { id, sentAt },
          { wait: 'materialized', timeoutMs: remaining + 1_000 },
        )
        .then(() => {
          materializedMs = Math.round(performance.now() - published);
        }),
      announced,
    ]);
    return 'done' as const;
  })();
  // Whatever is still under way at the deadline finishes (or fails) unobserved.
  run.catch(() => undefined);
  let error: string | undefined;
  try {
    if ((await Promise.race([run, deadline])) === 'deadline') {
      if (published === Number.POSITIVE_INFINITY)
        error = `canary not published within ${deadlineMs} ms (setting up the client and its watch took too long)`;
      else if (materializedMs === null) error = `canary not materialized within ${deadlineMs} ms`;
      else error = `canary materialized after ${materializedMs} ms but not announced within ${deadlineMs} ms`;
    }
  } catch (failure) {
    error = `canary ${published === Number.POSITIVE_INFINITY ? 'could not be set up' : 'write failed'}: ${describe(failure)}`;
  } finally {
    clearTimeout(timer);
    // A watch still being set up at the deadline is removed once it exists; the run waits a little for that, not forever.
    const cleanup = watching?.then((unsubscribe) => unsubscribe()).catch(() => undefined);
    if (cleanup) await Promise.race([cleanup, new Promise((resolve) => setTimeout(resolve, CLEANUP_WAIT_MS).unref())]);
  }
  return { ok: error === undefined, materializedMs, announcedMs, ...(error !== undefined && { error }) };
}

export async function checkDeadLetters(deadLetters: { count(): Promise<number> }): Promise<DeadLetterCheck> {
  try {
    const count = await deadLetters.count();
    return { ok: count === 0, count };
  } catch (error) {
    return { ok: false, count: null, error: `dead letters could not be counted: ${describe(error)}` };
  }
}

export async function checkPendingBatches(
  source: PendingBatchSource,
  maxBatchAgeMs: number,
  now: Date,
): Promise<PendingBatchCheck> {
  try {
    const times = await source.createTimes();
    const oldest = times.length === 0 ? null : Math.min(...times.map((t) => t.getTime()));
    const oldestAgeMs = oldest === null ? null : Math.max(0, now.getTime() - oldest);
    return { ok: oldestAgeMs === null || oldestAgeMs <= maxBatchAgeMs, oldestAgeMs, count: times.length };
  } catch (error) {
    return {
      ok: false,
      oldestAgeMs: null,
      count: null,
      error: `the persist queue could not be listed: ${describe(error)}`,
    };
  }
}

export async function checkSnapshots(
  state: Pick<NetworkStorage, 'listNetworks' | 'listSnapshots'>,
  now: Date,
): Promise<SnapshotCheck> {
  let networkIds: string[];
  try {
    networkIds = (await state.listNetworks()).filter((id) => !SYSTEM_NETWORKS.includes(id)).sort();
  } catch (error) {
    return { networks: [], error: `networks could not be listed: ${describe(error)}` };
  }
  const failures: string[] = [];
  const networks = await mapWithConcurrency(networkIds, 8, async (networkId): Promise<NetworkSnapshotAge> => {
    try {
      const newest = (await state.listSnapshots(networkId))[0];
      if (!newest) return { networkId, lastSnapshotAt: null, ageMs: null };
      return {
        networkId,
        lastSnapshotAt: newest.createdAt.toISOString(),
        ageMs: Math.max(0, now.getTime() - newest.createdAt.getTime()),
      };
    } catch (error) {
      failures.push(`${networkId} (${describe(error)})`);
      return { networkId, lastSnapshotAt: null, ageMs: null };
    }
  });
  return {
    networks,
    ...(failures.length > 0 && { error: `snapshots could not be listed for ${failures.join(', ')}` }),
  };
}

function isHeartbeat(value: unknown): value is Heartbeat {
  const beat = value as Partial<Heartbeat> | null;
  return (
    !!beat &&
    typeof beat === 'object' &&
    typeof beat.agentId === 'string' &&
    typeof beat.status === 'string' &&
    typeof beat.at === 'string' &&
    !Number.isNaN(Date.parse(beat.at))
  );
}

/** Every agent in the registry with its last heartbeat; entries that are not heartbeats are skipped (and logged). */
export async function checkAgents(
  state: Pick<NetworkStorage, 'loadGroupState'>,
  offlineAfterMs: number,
  now: Date,
  logger?: Logger,
): Promise<{ agents: AgentHealth[]; error?: string }> {
  let registry: GroupState | null;
  try {
    registry = await state.loadGroupState(REGISTRY_NETWORK, AGENTS_GROUP);
  } catch (error) {
    return { agents: [], error: `the agent registry could not be read: ${describe(error)}` };
  }
  const agents: AgentHealth[] = [];
  for (const [contactId, contact] of registry?.contacts ?? []) {
    if (!isHeartbeat(contact.content)) {
      logger?.warn('agent registry entry is not a heartbeat', { contactId });
      continue;
    }
    const beat = contact.content;
    // A clock ahead of ours makes a heartbeat from the future: it is as fresh as can be.
    const ageMs = Math.max(0, now.getTime() - Date.parse(beat.at));
    agents.push({
      agentId: contactId,
      status: beat.status,
      lastHeartbeat: new Date(beat.at).toISOString(),
      ageMs,
      online: ageMs <= offlineAfterMs,
    });
  }
  return { agents: agents.sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0)) };
}

/** Runs every check (in parallel; none can make another fail) and grades the result. */
export async function runHealthChecks(deps: HealthCheckDependencies): Promise<HealthReport> {
  const settings = validateHealthSettings(deps.settings);
  const now = deps.now ?? (() => new Date());
  const checkedAt = now();
  const began = performance.now();
  const [canary, deadLetters, pendingBatches, snapshots, agentsResult] = await Promise.all([
    checkCanary(deps.canary, settings.canaryDeadlineMs),
    checkDeadLetters(deps.deadLetters),
    checkPendingBatches(deps.pendingBatches, settings.maxBatchAgeMs, checkedAt),
    checkSnapshots(deps.state, checkedAt),
    // Read after the other checks' reads start, but aged against the run's start like everything else.
    checkAgents(deps.state, settings.offlineAfterMs, checkedAt, deps.logger),
  ]);
  const report: Omit<HealthReport, 'status' | 'failing' | 'warnings' | 'problems'> = {
    version: HEALTH_REPORT_VERSION,
    checkedAt: checkedAt.toISOString(),
    durationMs: Math.round(performance.now() - began),
    checks: { canary, deadLetters, pendingBatches, snapshots, agents: agentsResult.agents },
    thresholds: { ...settings },
  };
  return { ...report, ...grade(report.checks, settings, agentsResult.error) };
}

/** Which checks fail, which only warn, and why, by the rules at the top of this file. */
export function grade(
  checks: HealthReport['checks'],
  settings: HealthThresholds,
  agentsError?: string,
): Pick<HealthReport, 'status' | 'failing' | 'warnings' | 'problems'> {
  const failing: HealthCheckName[] = [];
  const warnings: HealthCheckName[] = [];
  const problems: string[] = [];
  const { canary, deadLetters, pendingBatches, snapshots, agents } = checks;

  if (!canary.ok) {
    failing.push('canary');
    problems.push(`canary: ${canary.error ?? 'not materialized and announced in time'}`);
  }
  if (!pendingBatches.ok) {
    failing.push('pendingBatches');
    problems.push(
      pendingBatches.error
        ? `pendingBatches: ${pendingBatches.error}`
        : `pendingBatches: the oldest of ${pendingBatches.count} batch flushes has waited ${pendingBatches.oldestAgeMs} ms, over ${settings.maxBatchAgeMs} ms`,
    );
  }
  if (!deadLetters.ok) {
    const over =
      deadLetters.count !== null && settings.maxDeadLetters !== null && deadLetters.count > settings.maxDeadLetters;
    (over ? failing : warnings).push('deadLetters');
    problems.push(
      deadLetters.error
        ? `deadLetters: ${deadLetters.error}`
        : `deadLetters: ${deadLetters.count} waiting${settings.maxDeadLetters === null ? '' : over ? `, over the limit of ${settings.maxDeadLetters}` : ` (unhealthy above ${settings.maxDeadLetters})`}`,
    );
  }
  if (snapshots.error) {
    warnings.push('snapshots');
    problems.push(`snapshots: ${snapshots.error}`);
  }
  const offline = agents.filter((a) => !a.online);
  if (agentsError || offline.length > 0) {
    warnings.push('agents');
    if (agentsError) problems.push(`agents: ${agentsError}`);
    if (offline.length > 0) {
      const shown = offline
        .slice(0, 10)
        .map((a) => a.agentId)
        .join(', ');
      problems.push(
        `agents: ${offline.length} offline (no heartbeat for over ${settings.offlineAfterMs} ms): ${shown}${offline.length > 10 ? ', …' : ''}`,
      );
    }
  }
  return { status: failing.length === 0 ? 'healthy' : 'unhealthy', failing, warnings, problems };
}

// ---- where the report goes

/** Writes the report to `health/{checkedAt}.json`, then `health/latest.json`, in `bucket`. */
export async function storeHealthReport(storage: Storage, bucket: string, report: HealthReport): Promise<void> {
  const body = JSON.stringify(report);
  const options = { resumable: false, contentType: 'application/json' };
  await storage.bucket(bucket).file(`${HEALTH_REPORT_PREFIX}${report.checkedAt}.json`).save(body, options);
  await storage.bucket(bucket).file(LATEST_HEALTH_REPORT).save(body, options);
}

/** Publishes the report as JSON, with `status` and `checkedAt` as attributes (for filtered subscriptions). */
export async function publishHealthReport(topic: Pick<Topic, 'publishMessage'>, report: HealthReport): Promise<string> {
  return topic.publishMessage({
    data: Buffer.from(JSON.stringify(report)),
    attributes: { status: report.status, checkedAt: report.checkedAt },
  });
}

/** The health function's HTTP answer, read as its handler writes it (functions/health/handler.ts). */
export interface HealthAnswer {
  /** 200 (healthy) or 503 (unhealthy): a report, stored and published. */
  report?: HealthReport;
  /** 500 with a report the checks made but that could not be stored or published. */
  undeliveredReport?: HealthReport;
  /** Why there is no deliverable report: the function's error message, or what was wrong with the answer. */
  error?: string;
}

export function readHealthAnswer(status: number, text: string): HealthAnswer {
  let body: (HealthReport & { report?: HealthReport; error?: { message?: string } }) | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    return { error: `answered ${status} with a body that is not JSON: ${text.slice(0, 200)}` };
  }
  if (status === 200 || status === 503) return { report: body! };
  return {
    ...(body?.report ? { undeliveredReport: body.report } : {}),
    error: `failed (${status}): ${body?.error?.message ?? text.slice(0, 200)}`,
  };
}
