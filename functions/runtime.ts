import type { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import type { DocumentStorage } from '../shared/backends/document-storage';
import { FileSystemStorage } from '../shared/backends/filesystem';
import { GcsStorage } from '../shared/backends/gcs';
import { createLogger, type Logger } from '../shared/log';
import { ChangePublisher } from '../shared/mesh/change-publisher';
import { createPubSubClient, createStorageClient } from '../shared/mesh/clients';
import { ContentStore } from '../shared/mesh/content-store';
import { DeadLetterStore } from '../shared/mesh/dead-letters';
import { loadSettings, type SpineSettings } from '../shared/settings';
import { defineTopology, type Topology } from '../shared/topology';

/** What every function of one process shares: settings, clients and stores, built once from the environment. */
export interface FunctionRuntime {
  settings: SpineSettings;
  topology: Topology;
  pubsub: PubSub;
  storage: Storage;
  state: DocumentStorage;
  changes: ChangePublisher;
  deadLetters: DeadLetterStore;
  content: ContentStore;
  logger: Logger;
  close(): Promise<void>;
}

export function createRuntime(env: Record<string, string | undefined> = process.env): FunctionRuntime {
  const settings = loadSettings(env);
  const topology = defineTopology({ projectId: settings.projectId, prefix: settings.topicPrefix, bucket: settings.bucket });
  const pubsub = createPubSubClient(settings);
  const storage = createStorageClient(settings);
  const writerId = `functions-${process.pid}`;
  const state: DocumentStorage =
    settings.stateStore === 'filesystem'
      ? new FileSystemStorage({ basePath: settings.statePath!, writerId })
      : new GcsStorage({ bucket: settings.bucket, prefix: settings.statePrefix, storage, writerId });
  const changes = new ChangePublisher(pubsub, topology.topics.groupChanges.name);
  const logger = createLogger('functions', { project: settings.projectId });
  return {
    settings,
    topology,
    pubsub,
    storage,
    state,
    changes,
    deadLetters: new DeadLetterStore(storage, settings.bucket),
    content: new ContentStore(storage, settings.bucket),
    logger,
    async close() {
      await changes.close();
      await state.close();
      await pubsub.close();
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
