import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { EmulatorsStartError, startEmulators, type LocalEmulators } from '../emulators/all';
import { createLogger, type Logger } from '../shared/log';
import { freePort } from '../emulators/ports';
import { FUNCTION_TARGETS } from '../functions/targets';
import { createPubSubClient, createStorageClient, createSubscriberClient, createTasksClient } from '../shared/mesh/clients';
import { provisionTopology, pushEndpoint } from '../shared/provision';
import { loadSettings, usesBatching, type SpineSettings } from '../shared/settings';
import { defineTopology, type FunctionName, type Topology } from '../shared/topology';
import { startSchedulerRunner, type SchedulerRunner } from '../scheduler/runner';
import { startFunctionsProcess, type FunctionsProcess } from './functions-process';
import { drainPushSubscription } from './drain';
import { describeTakenPorts } from './port-owner';

/** Fixed ports of the parts; 0 or absent picks a free one. */
export interface MeshPorts {
  pubsub?: number;
  storage?: number;
  tasks?: number;
  functions?: Partial<Record<FunctionName, number>>;
}

/** The part of the mesh that failed to start, named so one line can say what broke. */
export type MeshPart = 'ports' | 'emulators' | 'functions' | 'topology' | 'settings' | 'dashboard' | 'gateway';

export class MeshStartError extends Error {
  constructor(
    readonly part: MeshPart,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MeshStartError';
  }
}

const PART_NAMES: Record<keyof Omit<MeshPorts, 'functions'>, string> = { pubsub: 'Pub/Sub emulator', storage: 'Storage emulator', tasks: 'Tasks emulator' };

/** Each fixed port with the part it is for (0: a free one will be picked, nothing to check). */
export function portParts(ports: MeshPorts): Array<{ part: string; port: number }> {
  return [
    ...(['pubsub', 'storage', 'tasks'] as const).map((part) => ({ part: PART_NAMES[part], port: ports[part] ?? 0 })),
    ...Object.entries(ports.functions ?? {}).map(([name, port]) => ({ part: `${name} function`, port: port ?? 0 })),
  ];
}

export interface LocalMeshOptions {
  projectId?: string;
  topicPrefix?: string;
  bucket?: string;
  /** Keeps the Storage emulator's objects (the state) here between runs; in memory when unset. */
  dataDir?: string;
  /** Extra environment for the functions (e.g. SPINE_STATE_STORE). */
  functionsEnv?: Record<string, string>;
  logger?: Logger;
  onFunctionsLog?: (line: string) => void;
  /** Runs the scheduled jobs this many times faster than real time (default 1). */
  schedulerSpeedUp?: number;
  /** Start the scheduler runner (default true). */
  scheduler?: boolean;
  /** Only these jobs (names without the prefix, e.g. `snapshots`); all by default. */
  schedulerJobs?: string[];
  /** Deliver every slot twice, as Cloud Scheduler may (at least once). */
  schedulerDuplicateSlots?: boolean;
  /** Materialize into this PostgreSQL database (SPINE_STATE_STORE=postgres) instead of the Storage emulator; clients and functions both get it. */
  postgresUrl?: string;
  /** Fixed ports; free ones by default. Taken ports fail the start before anything runs. */
  ports?: MeshPorts;
}

/** What a draining stop delivered, and what it could not (lost with the Pub/Sub emulator). */
export interface StopReport {
  delivered: number;
  undelivered: number;
  /** Why draining failed as a whole, when it did. */
  drainError?: string;
}

export interface StopOptions {
  /**
   * Deliver what is still in Pub/Sub (which the emulator does not keep) before stopping: push
   * subscriptions are emptied into their functions and batched writes are persisted. Default true.
   */
  drain?: boolean;
}

export interface LocalMesh {
  readonly settings: SpineSettings;
  readonly topology: Topology;
  readonly emulators: LocalEmulators;
  readonly functions: FunctionsProcess;
  /** Fires the jobs of scheduler/jobs.ts against the functions; absent when turned off. */
  readonly scheduler?: SchedulerRunner;
  /** Everything a client needs: emulator hosts, project, bucket, topic prefix, function URLs. */
  readonly env: Record<string, string>;
  /** Stops the functions process and starts it again on the same ports (push endpoints stay valid). */
  restartFunctions(options?: { crash?: boolean }): Promise<void>;
  /** Stops everything it started; by default drains in-flight messages first (see StopOptions). */
  stop(options?: StopOptions): Promise<StopReport>;
}

/**
 * The whole mesh on this machine: the official Pub/Sub emulator, the Storage and Tasks
 * emulators, the functions in their own process, and the topology provisioned with push
 * subscriptions to them.
 */
export async function startLocalMesh(options: LocalMeshOptions = {}): Promise<LocalMesh> {
  const log = options.logger ?? createLogger('mesh');
  const requested = options.ports ?? {};
  const taken = await describeTakenPorts(portParts(requested));
  if (taken.length > 0) throw new MeshStartError('ports', taken.join('; '));
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  const emulators = await startEmulators({
    ...(options.projectId ? { projectId: options.projectId } : {}),
    ...(options.dataDir ? { dataDir: path.join(options.dataDir, 'storage') } : {}),
    ports: { pubsub: requested.pubsub ?? 0, storage: requested.storage ?? 0, tasks: requested.tasks ?? 0 },
    logger: log.child({ part: 'emulators' }),
  }).catch((error: unknown) => {
    throw new MeshStartError('emulators', describeEmulatorFailure(error), { cause: error });
  });
  let functions: FunctionsProcess | undefined;
  try {
    const env: Record<string, string> = {
      ...emulators.env(),
      SPINE_TOPIC_PREFIX: options.topicPrefix ?? 'spine-',
      SPINE_BUCKET: options.bucket ?? 'spine-state',
    };
    if (options.functionsEnv?.SPINE_PERSIST_ON) env.SPINE_PERSIST_ON = options.functionsEnv.SPINE_PERSIST_ON;
    if (options.postgresUrl) Object.assign(env, { SPINE_STATE_STORE: 'postgres', SPINE_POSTGRES_URL: options.postgresUrl });
    // Ports first: functions that enqueue tasks for other functions need their URLs up front.
    const ports: Partial<Record<FunctionName, number>> = {};
    for (const target of FUNCTION_TARGETS) ports[target] = requested.functions?.[target] || (await freePort());
    const urls = Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, `http://127.0.0.1:${port}`]));
    // Clients reach the health and snapshot functions directly (spine health, the dashboard).
    env.SPINE_FUNCTION_URLS = JSON.stringify(urls);
    const functionsEnv = { ...env, ...options.functionsEnv, SPINE_FUNCTION_URLS: JSON.stringify(urls) };
    let settings: SpineSettings;
    try {
      settings = loadSettings(functionsEnv);
    } catch (error) {
      throw new MeshStartError('settings', (error as Error).message, { cause: error });
    }
    const topology = defineTopology({ projectId: settings.projectId, prefix: settings.topicPrefix, bucket: settings.bucket, persistIntervalMs: settings.intervalMs });
    functions = await startFunctionsProcess({ env: functionsEnv, ports, onLog: options.onFunctionsLog }).catch((error: unknown) => {
      throw new MeshStartError('functions', (error as Error).message, { cause: error });
    });
    const pubsub = createPubSubClient(settings);
    const storage = createStorageClient(settings);
    const tasks = createTasksClient(settings);
    try {
      await provisionTopology(topology, { pubsub, storage, tasks, location: settings.tasksLocation }, { endpoints: functions.urls, logger: log });
    } catch (error) {
      throw new MeshStartError('topology', `provisioning failed: ${(error as Error).message}`, { cause: error });
    } finally {
      await pubsub.close();
      await tasks.close();
    }
    // Jobs whose function this mesh runs; the others wait for their function.
    const jobs = topology.jobs.filter(
      (job) => functions!.urls[job.target.function] !== undefined && (!options.schedulerJobs || options.schedulerJobs.includes(job.name.slice(topology.prefix.length))),
    );
    const scheduler =
      options.scheduler === false
        ? undefined
        : startSchedulerRunner({
            jobs,
            urls: functions.urls,
            speedUp: options.schedulerSpeedUp ?? 1,
            duplicateSlots: options.schedulerDuplicateSlots ?? false,
            logger: log.child({ part: 'scheduler' }),
          });
    let current = functions;
    return {
      ...(scheduler ? { scheduler } : {}),
      settings,
      topology,
      emulators,
      env,
      get functions() {
        return current;
      },
      async restartFunctions({ crash = false } = {}) {
        await (crash ? current.kill() : current.stop());
        current = await startFunctionsProcess({ env: functionsEnv, ports: current.ports, onLog: options.onFunctionsLog });
      },
      async stop({ drain = true } = {}) {
        await scheduler?.stop();
        let report: StopReport = { delivered: 0, undelivered: 0 };
        if (drain) {
          report = await drainMesh(settings, topology, current.urls, log.child({ part: 'drain' })).catch((error: unknown) => {
            log.error('draining the mesh failed; undelivered messages are lost with the Pub/Sub emulator', { error });
            return { delivered: 0, undelivered: 0, drainError: (error as Error).message };
          });
        }
        await current.stop();
        await emulators.stop();
        return report;
      },
    };
  } catch (error) {
    await functions?.stop();
    await emulators.stop();
    throw error;
  }
}

function describeEmulatorFailure(error: unknown): string {
  if (error instanceof EmulatorsStartError) {
    return error.failures.map(({ part, error: cause }) => `${PART_NAMES[part]}: ${(cause as Error).message ?? String(cause)}`).join('; ');
  }
  return (error as Error).message ?? String(error);
}

const DRAIN_POLL_MS = 300;

/**
 * Everything in flight reaches the state store: contact writes still in Pub/Sub are materialized,
 * batched writes are persisted, then dead letters are stored.
 */
async function drainMesh(settings: SpineSettings, topology: Topology, urls: Partial<Record<FunctionName, string>>, log: Logger): Promise<StopReport> {
  const subscriber = createSubscriberClient(settings);
  const path = (name: string) => `projects/${settings.projectId}/subscriptions/${name}`;
  const report: StopReport = { delivered: 0, undelivered: 0 };
  try {
    const drainPush = async (name: string, fn: FunctionName) => {
      const spec = Object.values(topology.subscriptions).find((subscription) => subscription.name === name);
      const base = urls[fn];
      if (!base || !spec) return;
      // The URL the emulator pushes to: the Functions Framework reads the topic from its path.
      const endpoint = pushEndpoint(base, settings.projectId, spec.topic);
      // A push that just failed comes back after its retry backoff: wait that long (capped) for quiet.
      const quietMs = Math.min(Math.max(DRAIN_POLL_MS * 3, spec.retryPolicy.minimumBackoffSeconds * 1000 + 1000), 3000);
      const result = await drainPushSubscription({ subscriber, subscription: path(name), endpoint, logger: log, pollMs: DRAIN_POLL_MS, quietPolls: Math.ceil(quietMs / DRAIN_POLL_MS) });
      log.info('subscription drained', { subscription: name, ...result });
      report.delivered += result.delivered;
      report.undelivered += result.failed;
      if (result.timedOut) throw new Error(`draining ${name} timed out`);
    };
    await drainPush(topology.subscriptions.materialize.name, 'materialize');
    if (usesBatching(settings) && urls.persist) {
      const response = await fetch(urls.persist, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ everything: true }) });
      const summary = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(`the final persist flush answered ${response.status}: ${JSON.stringify(summary)}`);
      log.info('pending writes persisted', summary as Record<string, unknown>);
    }
    await drainPush(topology.subscriptions.deadLetterStore.name, 'deadletter');
    return report;
  } finally {
    await subscriber.close();
  }
}
