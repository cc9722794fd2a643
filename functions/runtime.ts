import type { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import type { MaterializedState } from '../shared/backends/materialized-state';
import { stateStoreFromSettings } from '../shared/backends/from-settings';
import { createLogger, type Logger } from '../shared/log';
import { ChangePublisher } from '../shared/mesh/change-publisher';
import { BatchScheduler } from './batch-scheduler';
import {
  createPubSubClient,
  createStorageClient,
  createSubscriberClient,
  createTasksClient,
} from '../shared/mesh/clients';
import { FunctionTasks } from './function-tasks';
import { PendingWrites } from './pending-writes';
import { ContentStore } from '../shared/mesh/content-store';
import { DeadLetterStore } from '../shared/mesh/dead-letters';
import { InvalidArgumentError } from '../shared/errors';
import { loadSettings, parseSettings, usesBatching, type SpineSettings } from '../shared/settings';
import { defineTopology, type Topology } from '../shared/topology';

/** What every function of one process shares: settings, clients and stores, built once from the environment. */
export interface FunctionRuntime {
  settings: SpineSettings;
  topology: Topology;
  pubsub: PubSub;
  /**
   * For what a crash must not lose (contact writes, the pending buffer): the local mesh's journaling
   * pass-through when SPINE_PUBSUB_JOURNAL_HOST is set, else the same client as `pubsub`.
   */
  journaledPubSub: PubSub;
  storage: Storage;
  state: MaterializedState;
  changes: ChangePublisher;
  deadLetters: DeadLetterStore;
  content: ContentStore;
  /** The buffer of batched writes (used when any network's persistence is not `immediate`). */
  pending: PendingWrites;
  /** Books flushes of batch windows as Cloud Tasks; absent when no persist URL is configured. */
  batches?: BatchScheduler;
  /** Snapshot requests as Cloud Tasks for the snapshot function; absent when its URL is not configured. */
  snapshots?: FunctionTasks;
  logger: Logger;
  close(): Promise<void>;
}

export function createRuntime(env: Record<string, string | undefined> = process.env): FunctionRuntime {
  const settings = loadSettings(env);
  const topology = defineTopology({
    projectId: settings.projectId,
    prefix: settings.topicPrefix,
    bucket: settings.bucket,
    persistIntervalMs: settings.intervalMs,
  });
  const pubsub = createPubSubClient(settings);
  const storage = createStorageClient(settings);
  const writerId = `functions-${process.pid}`;
  const state: MaterializedState = stateStoreFromSettings(settings, { storage, writerId });
  const changes = new ChangePublisher(pubsub, topology.topics.groupChanges.name);
  const logger = createLogger('functions', { project: settings.projectId });
  const { tasksServiceAccount, pubsubJournalHost } = parseSettings('functions', { env });
  // Locally only the pending buffer needs the journal's pass-through (its copies hold their sources
  // and its acks release them); the change announcements skip the extra hop.
  const journaledSettings = pubsubJournalHost ? { ...settings, pubsubEmulatorHost: pubsubJournalHost } : settings;
  const journaledPubSub = pubsubJournalHost ? createPubSubClient(journaledSettings) : pubsub;
  const pending = new PendingWrites(
    journaledPubSub,
    topology.topics.pendingWrites.name,
    createSubscriberClient(journaledSettings),
    `projects/${settings.projectId}/subscriptions/${topology.subscriptions.pending.name}`,
  );
  const batched = usesBatching(settings);
  const persistUrl = settings.functionUrls.persist;
  if (batched && !persistUrl) {
    throw new InvalidArgumentError(
      "setting SPINE_FUNCTION_URLS must give the persist function's URL when persistence is batched (SPINE_PERSIST_ON or SPINE_PERSIST_OVERRIDES)",
    );
  }
  const snapshotUrl = settings.functionUrls.snapshot;
  const tasks = persistUrl || snapshotUrl ? createTasksClient(settings) : undefined;
  const serviceAccount = tasksServiceAccount ? { serviceAccountEmail: tasksServiceAccount } : {};
  const snapshots =
    tasks && snapshotUrl
      ? new FunctionTasks('snapshot', {
          tasks,
          queuePath: tasks.queuePath(settings.projectId, settings.tasksLocation, topology.queues.snapshots.name),
          url: snapshotUrl,
          ...serviceAccount,
        })
      : undefined;
  const batches =
    tasks && persistUrl
      ? new BatchScheduler({
          tasks,
          queuePath: tasks.queuePath(settings.projectId, settings.tasksLocation, topology.queues.persist.name),
          persistUrl,
          windowMs: settings.batchWindowMs,
          ...serviceAccount,
        })
      : undefined;
  return {
    settings,
    topology,
    pubsub,
    journaledPubSub,
    storage,
    state,
    changes,
    deadLetters: new DeadLetterStore(storage, settings.bucket),
    content: new ContentStore(storage, settings.bucket),
    pending,
    ...(batches ? { batches } : {}),
    ...(snapshots ? { snapshots } : {}),
    logger,
    async close() {
      await changes.close();
      await pending.close();
      await tasks?.close();
      await state.close();
      await pubsub.close();
      if (journaledPubSub !== pubsub) await journaledPubSub.close();
    },
  };
}

let shared: FunctionRuntime | undefined;

/** The process-wide runtime, built on first use so that loading a function module has no side effects. */
export function runtime(): FunctionRuntime {
  shared ??= createRuntime();
  return shared;
}

export async function closeRuntime(): Promise<void> {
  const current = shared;
  shared = undefined;
  await current?.close();
}
