import type { CreateSubscriptionOptions, PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import type { CloudTasksClient } from '@google-cloud/tasks';
import { createLogger, type Logger } from './log';
import { allSubscriptions, allTopics, type FunctionName, type QueueSpec, type SubscriptionSpec, type Topology } from './topology';

export interface ProvisionClients {
  pubsub: PubSub;
  storage?: Storage;
  tasks?: CloudTasksClient;
  /** Cloud Tasks location; `us-central1` by default. */
  location?: string;
}

export interface ProvisionOptions {
  /** Base URL of each function, for push subscriptions (e.g. `http://127.0.0.1:8081`). */
  endpoints?: Partial<Record<FunctionName, string>>;
  logger?: Logger;
}

export interface ProvisionReport {
  created: string[];
  updated: string[];
  unchanged: string[];
}

const ALREADY_EXISTS = 6;
const NOT_FOUND = 5;

function grpcCode(error: unknown): number | undefined {
  return (error as { code?: number }).code;
}

/** The push URL of a function for a topic; the path lets the Functions Framework name the topic. */
export function pushEndpoint(base: string, projectId: string, topic: string): string {
  return `${base.replace(/\/$/, '')}/projects/${projectId}/topics/${topic}`;
}

export function subscriptionMetadata(topology: Topology, spec: SubscriptionSpec, endpoints: ProvisionOptions['endpoints'] = {}) {
  const endpoint = spec.pushTo ? endpoints[spec.pushTo] : undefined;
  if (spec.pushTo && !endpoint) throw new Error(`no endpoint given for function ${spec.pushTo}, which subscriptions push to`);
  return {
    pushConfig: endpoint ? { pushEndpoint: pushEndpoint(endpoint, topology.projectId, spec.topic) } : {},
    ackDeadlineSeconds: spec.ackDeadlineSeconds,
    retryPolicy: {
      minimumBackoff: { seconds: spec.retryPolicy.minimumBackoffSeconds },
      maximumBackoff: { seconds: spec.retryPolicy.maximumBackoffSeconds },
    },
    deadLetterPolicy: spec.deadLetterPolicy
      ? { deadLetterTopic: `projects/${topology.projectId}/topics/${spec.deadLetterPolicy.topic}`, maxDeliveryAttempts: spec.deadLetterPolicy.maxDeliveryAttempts }
      : undefined,
    enableMessageOrdering: spec.enableMessageOrdering,
    filter: spec.filter,
    expirationPolicy: spec.expirationTtlSeconds ? { ttl: { seconds: spec.expirationTtlSeconds } } : { ttl: null },
    messageRetentionDuration: { seconds: spec.messageRetentionSeconds },
  };
}

/**
 * Creates whatever of the topology is missing and brings the rest up to date; safe to run any
 * number of times, against the emulators or a real project.
 */
export async function provisionTopology(topology: Topology, clients: ProvisionClients, options: ProvisionOptions = {}): Promise<ProvisionReport> {
  const log = options.logger ?? createLogger('provision');
  const report: ProvisionReport = { created: [], updated: [], unchanged: [] };
  const { pubsub } = clients;

  await Promise.all(
    allTopics(topology).map(async (spec) => {
      try {
        await pubsub.createTopic({ name: spec.name, ...(spec.messageRetentionSeconds ? { messageRetentionDuration: { seconds: spec.messageRetentionSeconds } } : {}) });
        report.created.push(`topic ${spec.name}`);
      } catch (error) {
        if (grpcCode(error) !== ALREADY_EXISTS) throw new Error(`could not create topic ${spec.name}: ${(error as Error).message}`, { cause: error });
        report.unchanged.push(`topic ${spec.name}`);
      }
    }),
  );

  for (const spec of allSubscriptions(topology)) await provisionSubscription(topology, pubsub, spec, options.endpoints, report, log);

  if (clients.storage) {
    const bucket = clients.storage.bucket(topology.bucket.name);
    const [exists] = await bucket.exists();
    if (exists) report.unchanged.push(`bucket ${topology.bucket.name}`);
    else {
      await clients.storage.createBucket(topology.bucket.name, { versioning: { enabled: topology.bucket.versioning } });
      report.created.push(`bucket ${topology.bucket.name}`);
    }
  }

  if (clients.tasks) {
    for (const spec of Object.values(topology.queues)) await provisionQueue(topology, clients.tasks, clients.location ?? 'us-central1', spec, report);
  }
  log.info('topology provisioned', { created: report.created.length, updated: report.updated.length, unchanged: report.unchanged.length });
  return report;
}

async function provisionSubscription(
  topology: Topology,
  pubsub: PubSub,
  spec: SubscriptionSpec,
  endpoints: ProvisionOptions['endpoints'],
  report: ProvisionReport,
  log: Logger,
): Promise<void> {
  const metadata = subscriptionMetadata(topology, spec, endpoints);
  const subscription = pubsub.subscription(spec.name);
  const [exists] = await subscription.exists();
  if (exists) {
    const [current] = await subscription.getMetadata();
    const immutableChanged =
      current.topic !== `projects/${topology.projectId}/topics/${spec.topic}` ||
      Boolean(current.enableMessageOrdering) !== spec.enableMessageOrdering ||
      (current.filter ?? '') !== (spec.filter ?? '');
    if (!immutableChanged) {
      await subscription.modifyPushConfig(metadata.pushConfig);
      await subscription.setMetadata({
        ackDeadlineSeconds: metadata.ackDeadlineSeconds,
        retryPolicy: metadata.retryPolicy,
        deadLetterPolicy: metadata.deadLetterPolicy ?? null,
        expirationPolicy: metadata.expirationPolicy,
        messageRetentionDuration: metadata.messageRetentionDuration,
      } as never);
      report.updated.push(`subscription ${spec.name}`);
      return;
    }
    // Ordering, filter and topic cannot change in place.
    log.warn('recreating subscription whose immutable settings changed', { subscription: spec.name });
    await subscription.delete().catch((error) => {
      if (grpcCode(error) !== NOT_FOUND) throw error;
    });
  }
  try {
    await pubsub.topic(spec.topic).createSubscription(spec.name, metadata as CreateSubscriptionOptions);
    report.created.push(`subscription ${spec.name}`);
  } catch (error) {
    if (grpcCode(error) !== ALREADY_EXISTS) throw new Error(`could not create subscription ${spec.name}: ${(error as Error).message}`, { cause: error });
    report.unchanged.push(`subscription ${spec.name}`);
  }
}

async function provisionQueue(topology: Topology, tasks: CloudTasksClient, location: string, spec: QueueSpec, report: ProvisionReport): Promise<void> {
  const parent = tasks.locationPath(topology.projectId, location);
  const name = tasks.queuePath(topology.projectId, location, spec.name);
  const queue = {
    name,
    rateLimits: { maxDispatchesPerSecond: spec.maxDispatchesPerSecond, maxConcurrentDispatches: spec.maxConcurrentDispatches },
    retryConfig: {
      maxAttempts: spec.maxAttempts,
      minBackoff: seconds(spec.minBackoffSeconds),
      maxBackoff: seconds(spec.maxBackoffSeconds),
      maxDoublings: spec.maxDoublings,
      maxRetryDuration: seconds(spec.maxRetryDurationSeconds),
    },
  };
  try {
    await tasks.createQueue({ parent, queue });
    report.created.push(`queue ${spec.name}`);
  } catch (error) {
    if (grpcCode(error) !== ALREADY_EXISTS) throw new Error(`could not create queue ${spec.name}: ${(error as Error).message}`, { cause: error });
    await tasks.updateQueue({ queue, updateMask: { paths: ['rate_limits', 'retry_config'] } });
    report.updated.push(`queue ${spec.name}`);
  }
}

function seconds(value: number) {
  const whole = Math.floor(value);
  return { seconds: whole, nanos: Math.round((value - whole) * 1e9) };
}
