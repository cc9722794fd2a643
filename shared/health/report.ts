import { InvalidArgumentError } from '../errors';
import { parseSettings } from '../settings';
import { DEFAULT_CANARY_DEADLINE_MS, DEFAULT_MAX_BATCH_AGE_MS, MAX_CANARY_DEADLINE_MS } from '../settings/table';
import type { Logger } from '../log';
import type { NetworkStorage, SubscriptionCallback, Unsubscribe } from '../model';
import { CANARY_NETWORK, REGISTRY_NETWORK } from '../system';

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

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
