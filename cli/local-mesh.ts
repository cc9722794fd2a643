import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PubSub, Topic } from '@google-cloud/pubsub';
import { EmulatorsStartError, startEmulators, type LocalEmulators } from '../emulators/all';
import { createLogger, type Logger } from '../shared/log';
import { freePort } from '../emulators/ports';
import { FUNCTION_TARGETS } from '../functions/targets';
import { createPubSubClient, createStorageClient, createTasksClient } from '../shared/mesh/clients';
import { SOURCE_MESSAGE_ATTRIBUTE } from '../functions/pending-writes';
import { provisionTopology, pushEndpoint } from '../shared/provision';
import { loadSettings, usesBatching, type SpineSettings } from '../shared/settings';
import { allSubscriptions, defineTopology, type FunctionName, type Topology } from '../shared/topology';
import { startSchedulerRunner, type SchedulerRunner } from '../scheduler/runner';
import { startFunctionsProcess, type FunctionsProcess } from './functions-process';
import { AcceptedJournal, readingOf } from './accepted-journal';
import { startDeliveryRelay, type DeliveryRelay, type RelayRoute } from './delivery-relay';
import {
  PROCESSES_FILE,
  superviseFunctions,
  type FunctionsSupervisor,
  type SupervisionStatus,
} from './functions-supervisor';
import { startPubSubProxy, type PubSubProxy } from './pubsub-proxy';
import { describeTakenPorts } from './port-owner';
import { ensureArchiveSubscription } from './archiver';
import { startArchiverProcess, type ArchiverProcess } from './archiver-process';

/** Fixed ports of the parts; 0 or absent picks a free one. */
export interface MeshPorts {
  pubsub?: number;
  storage?: number;
  tasks?: number;
  functions?: Partial<Record<FunctionName, number>>;
}

/** The part of the mesh that failed to start, named so one line can say what broke. */
export type MeshPart =
  'ports' | 'emulators' | 'journal' | 'functions' | 'topology' | 'settings' | 'dashboard' | 'gateway' | 'archiver';

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

const PART_NAMES: Record<keyof Omit<MeshPorts, 'functions'>, string> = {
  pubsub: 'Pub/Sub emulator',
  storage: 'Storage emulator',
  tasks: 'Tasks emulator',
};

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
  /**
   * Run the archiver, which writes every contact-writes event to the archive in the state bucket
   * (`spine dev` does); `maxBatchMs` is its batch window (1 s by default). Off by default.
   */
  archiver?: boolean | { maxBatchMs?: number };
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
  /** Delivers what the push subscriptions hold to the functions (the emulator's push loop is not used). */
  readonly relay: DeliveryRelay;
  /** The journal of accepted messages, with a data dir. */
  readonly journal?: AcceptedJournal;
  /** The archiver process (supervised), when started. */
  readonly archiver?: ArchiverProcess;
  /** The functions process as supervised: restarted when it dies, not when stopped through `functions.stop()`. */
  supervision(): SupervisionStatus;
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
  // With a data dir, what Pub/Sub accepts is journaled there: clients reach the emulator through
  // the journaling pass-through, which takes the Pub/Sub port; the emulator gets a free one.
  const journal = options.dataDir
    ? await AcceptedJournal.open(path.join(options.dataDir, JOURNAL_DIR), log.child({ part: 'journal' })).catch(
        (error: unknown) => {
          throw new MeshStartError(
            'journal',
            `the Pub/Sub journal in ${options.dataDir} could not be opened: ${(error as Error).message}`,
            { cause: error },
          );
        },
      )
    : undefined;
  const emulators = await startEmulators({
    ...(options.projectId ? { projectId: options.projectId } : {}),
    ...(options.dataDir ? { dataDir: path.join(options.dataDir, 'storage') } : {}),
    ports: {
      pubsub: journal ? 0 : (requested.pubsub ?? 0),
      storage: requested.storage ?? 0,
      tasks: requested.tasks ?? 0,
    },
    logger: log.child({ part: 'emulators' }),
  }).catch(async (error: unknown) => {
    await journal?.close();
    throw new MeshStartError('emulators', describeEmulatorFailure(error), { cause: error });
  });
  let supervisor: FunctionsSupervisor | undefined;
  let proxy: PubSubProxy | undefined;
  let relay: DeliveryRelay | undefined;
  let archiver: ArchiverProcess | undefined;
  // Filled once the topology is known; the pass-through reads them on every call.
  const journaledTopics = new Set<string>();
  const derivedTopics = new Set<string>();
  const ackedSubscriptions = new Set<string>();
  const sourceAttributes = new Map<string, string>();
  const secondReaders = new Map<string, string>();
  const upstreamHost = emulators.env().PUBSUB_EMULATOR_HOST!;
  try {
    if (journal) {
      proxy = await startPubSubProxy({
        upstream: upstreamHost,
        port: requested.pubsub ?? 0,
        journal,
        journaledTopics,
        derivedTopics,
        ackedSubscriptions,
        sourceAttributes,
        secondReaders,
        logger: log.child({ part: 'pubsub-journal' }),
      }).catch((error: unknown) => {
        throw new MeshStartError('ports', `the Pub/Sub port ${requested.pubsub ?? 0}: ${(error as Error).message}`, {
          cause: error,
        });
      });
    }
    const env: Record<string, string> = {
      ...emulators.env(),
      ...(proxy ? { PUBSUB_EMULATOR_HOST: proxy.host } : {}),
      SPINE_TOPIC_PREFIX: options.topicPrefix ?? 'spine-',
      SPINE_BUCKET: options.bucket ?? 'spine-state',
    };
    if (options.functionsEnv?.SPINE_PERSIST_ON) env.SPINE_PERSIST_ON = options.functionsEnv.SPINE_PERSIST_ON;
    if (options.postgresUrl)
      Object.assign(env, { SPINE_STATE_STORE: 'postgres', SPINE_POSTGRES_URL: options.postgresUrl });
    // Ports first: functions that enqueue tasks for other functions need their URLs up front.
    const ports: Partial<Record<FunctionName, number>> = {};
    for (const target of FUNCTION_TARGETS) ports[target] = requested.functions?.[target] || (await freePort());
    const urls = Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, `http://127.0.0.1:${port}`]));
    // Clients reach the health and snapshot functions directly (spine health, the dashboard).
    env.SPINE_FUNCTION_URLS = JSON.stringify(urls);
    const functionsEnv: Record<string, string> = {
      ...env,
      ...options.functionsEnv,
      PUBSUB_EMULATOR_HOST: env.PUBSUB_EMULATOR_HOST!,
      SPINE_FUNCTION_URLS: JSON.stringify(urls),
    };
    let settings: SpineSettings;
    try {
      settings = loadSettings(functionsEnv);
    } catch (error) {
      throw new MeshStartError('settings', (error as Error).message, { cause: error });
    }
    const topology = defineTopology({
      projectId: settings.projectId,
      prefix: settings.topicPrefix,
      bucket: settings.bucket,
      persistIntervalMs: settings.intervalMs,
    });
    const fullTopic = (name: string) => `projects/${settings.projectId}/topics/${name}`;
    const fullSubscription = (name: string) => `projects/${settings.projectId}/subscriptions/${name}`;
    for (const topic of [topology.topics.contactWrites, topology.topics.pendingWrites, topology.topics.deadLetters])
      journaledTopics.add(fullTopic(topic.name));
    for (const topic of [topology.topics.pendingWrites, topology.topics.deadLetters])
      derivedTopics.add(fullTopic(topic.name));
    ackedSubscriptions.add(fullSubscription(topology.subscriptions.pending.name));
    // Pending copies name their contact-writes message: they hold it not done instead of being journaled.
    sourceAttributes.set(fullTopic(topology.topics.pendingWrites.name), SOURCE_MESSAGE_ATTRIBUTE);
    // A contact write is done once materialized and archived: a crash before the archive holds it replays it.
    const archiveReader = options.archiver
      ? {
          topic: fullTopic(topology.topics.contactWrites.name),
          subscription: fullSubscription(topology.archive.subscription.name),
        }
      : undefined;
    if (archiveReader) secondReaders.set(archiveReader.topic, archiveReader.subscription);

    // The functions reach the emulator directly; only the pending buffer goes through the journal's
    // pass-through (a hop of its own on every call, in this process's thread).
    const functionsProcessEnv = proxy
      ? { ...functionsEnv, PUBSUB_EMULATOR_HOST: upstreamHost, SPINE_PUBSUB_JOURNAL_HOST: proxy.host }
      : functionsEnv;
    const startFunctions = () =>
      startFunctionsProcess({ env: functionsProcessEnv, ports, onLog: options.onFunctionsLog });
    const functions = await startFunctions().catch((error: unknown) => {
      throw new MeshStartError('functions', (error as Error).message, { cause: error });
    });
    const upstreamSettings = { projectId: settings.projectId, pubsubEmulatorHost: upstreamHost };
    const upstream = createPubSubClient(upstreamSettings);
    const storage = createStorageClient(settings);
    const tasks = createTasksClient(settings);
    let replayed = { contactWrites: 0, pendingWrites: 0 };
    try {
      await provisionTopology(
        topology,
        { pubsub: upstream, storage, tasks, location: settings.tasksLocation },
        { endpoints: functions.urls, logger: log, localDelivery: true },
      );
      // Before anything is replayed or written, so the archive misses nothing.
      if (options.archiver) await ensureArchiveSubscription(topology, upstream);
      if (journal)
        replayed = await replayUnfinished(journal, upstream, topology, log.child({ part: 'journal' }), archiveReader);
    } catch (error) {
      await upstream.close();
      throw new MeshStartError('topology', `provisioning failed: ${(error as Error).message}`, { cause: error });
    } finally {
      await tasks.close();
    }
    proxy?.open();
    if (options.archiver) {
      archiver = await startArchiverProcess({
        // Through the journaling pass-through, which sees its acknowledgements (see `secondReaders`).
        env: { ...functionsEnv, PUBSUB_EMULATOR_HOST: proxy ? proxy.host : upstreamHost },
        ...(typeof options.archiver === 'object' && options.archiver.maxBatchMs
          ? { maxBatchMs: options.archiver.maxBatchMs }
          : {}),
        logger: log.child({ part: 'archiver' }),
        ...(options.onFunctionsLog ? { onLog: options.onFunctionsLog } : {}),
      }).catch((error: unknown) => {
        throw new MeshStartError('archiver', (error as Error).message, { cause: error });
      });
    }
    // Dead letters go through the pass-through, so they are journaled like any accepted message.
    const publisher = createPubSubClient(settings);
    const routes = relayRoutes(topology, functions.urls);
    relay = startDeliveryRelay({
      subscriber: upstream,
      publisher,
      projectId: settings.projectId,
      routes,
      logger: log.child({ part: 'relay' }),
      ...(journal
        ? { onDone: (_route: RelayRoute, messageId: string) => journal.markDone([journal.idOf(messageId)]) }
        : {}),
    });
    const statusFile = options.dataDir ? path.join(options.dataDir, PROCESSES_FILE) : undefined;
    const activeRelay = relay;
    supervisor = superviseFunctions(functions, {
      start: startFunctions,
      logger: log.child({ part: 'supervisor' }),
      onRestarted: () => activeRelay.wake(),
      onStatus: (status) => {
        if (statusFile)
          void writeFile(statusFile, JSON.stringify({ functions: status, pid: process.pid }, null, 2) + '\n').catch(
            () => undefined,
          );
      },
    });
    if (statusFile)
      await writeFile(statusFile, JSON.stringify({ functions: supervisor.status(), pid: process.pid }, null, 2) + '\n');
    // Batched writes a crashed run left pending have lost their flush tasks with the Tasks emulator: flushed now.
    if (replayed.pendingWrites > 0 && functions.urls.persist) {
      void persistEverything(functions.urls.persist).then(
        (summary) => log.info('pending writes of an earlier run persisted', summary),
        (error: unknown) =>
          log.warn('pending writes of an earlier run could not be persisted yet; the next flush takes them', { error }),
      );
    }
    // Jobs whose function this mesh runs; the others wait for their function.
    const jobs = topology.jobs.filter(
      (job) =>
        functions.urls[job.target.function] !== undefined &&
        (!options.schedulerJobs || options.schedulerJobs.includes(job.name.slice(topology.prefix.length))),
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
    const running = supervisor;
    const runningArchiver = archiver;
    let stopped: Promise<StopReport> | undefined;
    return {
      ...(scheduler ? { scheduler } : {}),
      settings,
      topology,
      emulators,
      env,
      relay: activeRelay,
      ...(journal ? { journal } : {}),
      ...(runningArchiver ? { archiver: runningArchiver } : {}),
      get functions() {
        return running.current;
      },
      supervision: () => running.status(),
      async restartFunctions({ crash = false } = {}) {
        await running.replace((current) => (crash ? current.kill() : current.stop()));
      },
      stop({ drain = true } = {}) {
        return (stopped ??= (async () => {
          await scheduler?.stop();
          // New writes are refused from here on (not acknowledged; the client may retry), so a
          // writer still writing cannot keep the drain from ending.
          proxy?.refusePublishesTo(new Set([fullTopic(topology.topics.contactWrites.name)]));
          let report: StopReport = { delivered: 0, undelivered: 0 };
          if (drain) {
            report = await drainMesh(
              activeRelay,
              settings,
              running.current.urls,
              log.child({ part: 'drain' }),
              Boolean(journal),
            ).catch((error: unknown) => {
              log.error(
                journal
                  ? 'draining the mesh failed; what was not delivered is kept in the journal for the next start'
                  : 'draining the mesh failed; undelivered messages are lost with the Pub/Sub emulator',
                { error },
              );
              return { delivered: 0, undelivered: activeRelay.stats().inHand, drainError: (error as Error).message };
            });
          }
          // After the drain: what it delivered is archived too; the archiver writes what it holds, then exits.
          await runningArchiver?.stop();
          await activeRelay.stop();
          await running.stop();
          await publisher.close().catch(() => undefined);
          await upstream.close().catch(() => undefined);
          await proxy?.stop();
          await journal?.close();
          if (statusFile) await rm(statusFile, { force: true });
          await emulators.stop();
          return report;
        })());
      },
    };
  } catch (error) {
    await archiver?.stop().catch(() => undefined);
    await relay?.stop();
    await supervisor?.stop();
    await proxy?.stop();
    await journal?.close();
    await emulators.stop();
    throw error;
  }
}

/** Where the journal of accepted messages lives inside the data dir. */
export const JOURNAL_DIR = 'pubsub-journal';

/** The push subscriptions, delivered by the relay: same endpoints, backoff and attempts as the topology's push config. */
function relayRoutes(topology: Topology, urls: Partial<Record<FunctionName, string>>): RelayRoute[] {
  return allSubscriptions(topology).flatMap((spec) => {
    const base = spec.pushTo ? urls[spec.pushTo] : undefined;
    if (!spec.pushTo || !base) return [];
    return [
      {
        subscription: spec.name,
        subscriptionPath: `projects/${topology.projectId}/subscriptions/${spec.name}`,
        endpoint: pushEndpoint(base, topology.projectId, spec.topic),
        minimumBackoffMs: spec.retryPolicy.minimumBackoffSeconds * 1000,
        maximumBackoffMs: spec.retryPolicy.maximumBackoffSeconds * 1000,
        maxDeliveryAttempts: spec.deadLetterPolicy?.maxDeliveryAttempts ?? Infinity,
        ...(spec.deadLetterPolicy
          ? { deadLetterTopic: `projects/${topology.projectId}/topics/${spec.deadLetterPolicy.topic}` }
          : {}),
      },
    ];
  });
}

/**
 * Publishes again what earlier runs accepted and did not finish (in acceptance order, keys kept),
 * journals the new copies and marks the old ones done. A crash in between leaves both: replays
 * are harmless, materialize and persist apply a write at most once.
 */
async function replayUnfinished(
  journal: AcceptedJournal,
  upstream: PubSub,
  topology: Topology,
  log: Logger,
  secondReader?: { topic: string; subscription: string },
): Promise<{ contactWrites: number; pendingWrites: number }> {
  const unfinished = journal.unfinished;
  const counts = { contactWrites: 0, pendingWrites: 0 };
  if (unfinished.length === 0) return counts;
  const started = Date.now();
  const topics = new Map<string, Topic>();
  const topicOf = (name: string) => {
    let topic = topics.get(name);
    if (!topic)
      topics.set(
        name,
        (topic = upstream.topic(name, { messageOrdering: true, batching: { maxMessages: 500, maxMilliseconds: 5 } })),
      );
    return topic;
  };
  const ids = await Promise.all(
    unfinished.map((message) =>
      topicOf(message.topic).publishMessage({
        data: Buffer.from(message.data, 'base64'),
        attributes: message.attributes,
        ...(message.orderingKey ? { orderingKey: message.orderingKey } : {}),
      }),
    ),
  );
  const copies = unfinished.map((message, index) => ({ ...message, id: journal.idOf(ids[index]!) }));
  if (secondReader)
    for (const copy of copies)
      if (copy.topic === secondReader.topic) journal.hold(copy.id, readingOf(secondReader.subscription, copy.id));
  await journal.append(copies);
  journal.markDone(unfinished.map((message) => message.id));
  const pendingTopic = `projects/${topology.projectId}/topics/${topology.topics.pendingWrites.name}`;
  for (const message of unfinished) {
    if (message.topic === pendingTopic) counts.pendingWrites++;
    else counts.contactWrites++;
  }
  log.info('messages accepted before a crash or stop published again', {
    ...counts,
    total: unfinished.length,
    ms: Date.now() - started,
  });
  return counts;
}

async function persistEverything(url: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ everything: true }),
  });
  const summary = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) throw new Error(`persist answered ${response.status}: ${JSON.stringify(summary)}`);
  return summary;
}

function describeEmulatorFailure(error: unknown): string {
  if (error instanceof EmulatorsStartError) {
    return error.failures
      .map(({ part, error: cause }) => `${PART_NAMES[part]}: ${(cause as Error).message ?? String(cause)}`)
      .join('; ');
  }
  return (error as Error).message ?? String(error);
}

/** Quiet time that counts as drained: the relay streams, so anything still in Pub/Sub arrives well within it. */
const DRAIN_QUIET_MS = 1_000;
const DRAIN_TIMEOUT_MS = 60_000;

/**
 * Everything in flight reaches the state store: the relay delivers what is in Pub/Sub until it is
 * quiet, batched writes are persisted, then dead letters are stored.
 */
async function drainMesh(
  relay: DeliveryRelay,
  settings: SpineSettings,
  urls: Partial<Record<FunctionName, string>>,
  log: Logger,
  journaled: boolean,
): Promise<StopReport> {
  const before = relay.stats().delivered;
  const idle = async (what: string) => {
    if (!(await relay.idle(DRAIN_QUIET_MS, DRAIN_TIMEOUT_MS)))
      throw new Error(
        `${what}: still ${relay.stats().inHand} messages in hand after ${DRAIN_TIMEOUT_MS} ms${journaled ? ' (kept in the journal for the next start)' : ''}`,
      );
  };
  await idle('delivering contact writes');
  if (usesBatching(settings) && urls.persist)
    log.info('pending writes persisted', await persistEverything(urls.persist));
  await idle('storing dead letters');
  const report = { delivered: relay.stats().delivered - before, undelivered: relay.stats().inHand };
  log.info('mesh drained', report);
  return report;
}
