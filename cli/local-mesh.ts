import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startEmulators, type LocalEmulators } from '../emulators/all';
import { createLogger, type Logger } from '../shared/log';
import { freePort } from '../emulators/ports';
import { FUNCTION_TARGETS } from '../functions/targets';
import { createPubSubClient, createStorageClient, createTasksClient } from '../shared/mesh/clients';
import { provisionTopology } from '../shared/provision';
import { loadSettings, type SpineSettings } from '../shared/settings';
import { defineTopology, type FunctionName, type Topology } from '../shared/topology';
import { startSchedulerRunner, type SchedulerRunner } from '../scheduler/runner';
import { startFunctionsProcess, type FunctionsProcess } from './functions-process';

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
  stop(): Promise<void>;
}

/**
 * The whole mesh on this machine: the official Pub/Sub emulator, the Storage and Tasks
 * emulators, the functions in their own process, and the topology provisioned with push
 * subscriptions to them.
 */
export async function startLocalMesh(options: LocalMeshOptions = {}): Promise<LocalMesh> {
  const log = options.logger ?? createLogger('mesh');
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  const emulators = await startEmulators({
    ...(options.projectId ? { projectId: options.projectId } : {}),
    ...(options.dataDir ? { dataDir: path.join(options.dataDir, 'storage') } : {}),
    logger: log.child({ part: 'emulators' }),
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
    for (const target of FUNCTION_TARGETS) ports[target] = await freePort();
    const urls = Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, `http://127.0.0.1:${port}`]));
    // Clients reach the health and snapshot functions directly (spine health, the dashboard).
    env.SPINE_FUNCTION_URLS = JSON.stringify(urls);
    const functionsEnv = { ...env, ...options.functionsEnv, SPINE_FUNCTION_URLS: JSON.stringify(urls) };
    const settings = loadSettings(functionsEnv);
    const topology = defineTopology({ projectId: settings.projectId, prefix: settings.topicPrefix, bucket: settings.bucket, persistIntervalMs: settings.intervalMs });
    functions = await startFunctionsProcess({ env: functionsEnv, ports, onLog: options.onFunctionsLog });
    const pubsub = createPubSubClient(settings);
    const storage = createStorageClient(settings);
    const tasks = createTasksClient(settings);
    try {
      await provisionTopology(topology, { pubsub, storage, tasks, location: settings.tasksLocation }, { endpoints: functions.urls, logger: log });
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
      async stop() {
        await scheduler?.stop();
        await current.stop();
        await emulators.stop();
      },
    };
  } catch (error) {
    await functions?.stop();
    await emulators.stop();
    throw error;
  }
}
