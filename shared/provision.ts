import type { CreateSubscriptionOptions, protos as pubsubProtos, PubSub } from '@google-cloud/pubsub';
import type { Bucket, BucketMetadata, LifecycleRule, Storage } from '@google-cloud/storage';
import type { CloudTasksClient, protos as tasksProtos } from '@google-cloud/tasks';
import { InvalidArgumentError } from './errors';
import { createLogger, type Logger } from './log';
import {
  allSubscriptions,
  allTopics,
  type BucketSpec,
  type FunctionName,
  type QueueSpec,
  type SubscriptionSpec,
  type TopicSpec,
  type Topology,
} from './topology';
import { status as GrpcStatus } from '@grpc/grpc-js';

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
  /**
   * The local mesh delivers pushes itself (cli/delivery-relay.ts) and counts attempts itself:
   * push subscriptions become pull subscriptions and no subscription gets a dead-letter policy,
   * whose forwarding crashes the emulator's push loop for good. Never for Google Cloud.
   */
  localDelivery?: boolean;
}

export interface ProvisionReport {
  created: string[];
  updated: string[];
  unchanged: string[];
}

const INVALID_ARGUMENT = 3;
const { NOT_FOUND, ALREADY_EXISTS } = GrpcStatus;

function grpcCode(error: unknown): number | undefined {
  return (error as { code?: number } | undefined)?.code;
}

function failure(what: string, error: unknown): Error {
  return new Error(`could not ${what}: ${(error as Error).message}`, { cause: error });
}

/** The push URL of a function for a topic; the path lets the Functions Framework name the topic. */
export function pushEndpoint(base: string, projectId: string, topic: string): string {
  return `${base.replace(/\/$/, '')}/projects/${projectId}/topics/${topic}`;
}

function missingEndpointMessage(fn: FunctionName, subscriptions: string[]): string {
  return `no endpoint given for function ${fn}, which subscription${subscriptions.length > 1 ? 's' : ''} ${subscriptions.join(', ')} push${subscriptions.length > 1 ? '' : 'es'} to`;
}

export function subscriptionMetadata(
  topology: Topology,
  spec: SubscriptionSpec,
  endpoints: ProvisionOptions['endpoints'] = {},
  { localDelivery = false } = {},
) {
  const endpoint = spec.pushTo && !localDelivery ? endpoints[spec.pushTo] : undefined;
  if (spec.pushTo && !localDelivery && !endpoint)
    throw new InvalidArgumentError(missingEndpointMessage(spec.pushTo, [spec.name]));
  return {
    pushConfig: endpoint ? { pushEndpoint: pushEndpoint(endpoint, topology.projectId, spec.topic) } : {},
    ackDeadlineSeconds: spec.ackDeadlineSeconds,
    retryPolicy: {
      minimumBackoff: { seconds: spec.retryPolicy.minimumBackoffSeconds },
      maximumBackoff: { seconds: spec.retryPolicy.maximumBackoffSeconds },
    },
    deadLetterPolicy:
      spec.deadLetterPolicy && !localDelivery
        ? {
            deadLetterTopic: topicPath(topology, spec.deadLetterPolicy.topic),
            maxDeliveryAttempts: spec.deadLetterPolicy.maxDeliveryAttempts,
          }
        : undefined,
    enableMessageOrdering: spec.enableMessageOrdering,
    filter: spec.filter,
    expirationPolicy: spec.expirationTtlSeconds ? { ttl: { seconds: spec.expirationTtlSeconds } } : { ttl: null },
    messageRetentionDuration: { seconds: spec.messageRetentionSeconds },
  };
}

type SubscriptionMetadata = ReturnType<typeof subscriptionMetadata>;

// Resources are addressed by full name, so they land in the topology's project whatever project
// the client was built for (dead-letter topics and push paths already name the topology's).
const topicPath = (topology: Topology, name: string) => `projects/${topology.projectId}/topics/${name}`;
const subscriptionPath = (topology: Topology, name: string) => `projects/${topology.projectId}/subscriptions/${name}`;

/**
 * Creates whatever of the topology is missing and brings the rest up to date; safe to run any
 * number of times, against the emulators or a real project. Settings that cannot change in place
 * (a subscription's topic, ordering or filter) recreate the subscription, losing its backlog.
 * Every push subscription needs its function's endpoint; without one nothing is touched.
 */
export async function provisionTopology(
  topology: Topology,
  clients: ProvisionClients,
  options: ProvisionOptions = {},
): Promise<ProvisionReport> {
  const log = options.logger ?? createLogger('provision');
  const report: ProvisionReport = { created: [], updated: [], unchanged: [] };
  const { pubsub } = clients;

  // Checked before any change: a missing endpoint fails the run before anything is created.
  const subscriptions = allSubscriptions(topology);
  const missing = new Map<FunctionName, string[]>();
  for (const spec of subscriptions) {
    if (spec.pushTo && !options.localDelivery && !options.endpoints?.[spec.pushTo])
      missing.set(spec.pushTo, [...(missing.get(spec.pushTo) ?? []), spec.name]);
  }
  if (missing.size > 0)
    throw new InvalidArgumentError([...missing].map(([fn, names]) => missingEndpointMessage(fn, names)).join('; '));
  const planned = subscriptions.map((spec) => ({
    spec,
    metadata: subscriptionMetadata(topology, spec, options.endpoints, {
      localDelivery: options.localDelivery ?? false,
    }),
  }));

  const topicOutcomes = await Promise.all(allTopics(topology).map((spec) => provisionTopic(topology, pubsub, spec)));
  allTopics(topology).forEach((spec, index) => report[topicOutcomes[index]!].push(`topic ${spec.name}`));

  for (const { spec, metadata } of planned) {
    report[await provisionSubscription(topology, pubsub, spec, metadata, log)].push(`subscription ${spec.name}`);
  }

  if (clients.storage)
    report[await provisionBucket(clients.storage, topology.bucket)].push(`bucket ${topology.bucket.name}`);

  if (clients.tasks) {
    const location = clients.location ?? 'us-central1';
    for (const spec of Object.values(topology.queues))
      report[await provisionQueue(topology, clients.tasks, location, spec)].push(`queue ${spec.name}`);
  }
  log.info('topology provisioned', {
    created: report.created.length,
    updated: report.updated.length,
    unchanged: report.unchanged.length,
  });
  return report;
}

type Outcome = keyof ProvisionReport;

/** Seconds of a protobuf Duration as the clients return it (seconds as string, number or Long). */
function durationSeconds(
  duration: { seconds?: unknown; nanos?: number | null } | null | undefined,
): number | undefined {
  if (!duration) return undefined;
  const raw = duration.seconds as { toNumber?: () => number } | string | number | null | undefined;
  const whole =
    typeof raw === 'object' && raw !== null && typeof raw.toNumber === 'function' ? raw.toNumber() : Number(raw ?? 0);
  return whole + (duration.nanos ?? 0) / 1e9;
}

const sameSeconds = (a: number | undefined, b: number | undefined) =>
  (a ?? 0) === (b ?? 0) || Math.abs((a ?? 0) - (b ?? 0)) < 1e-6;

async function provisionTopic(topology: Topology, pubsub: PubSub, spec: TopicSpec): Promise<Outcome> {
  const name = topicPath(topology, spec.name);
  const retention = spec.messageRetentionSeconds
    ? { messageRetentionDuration: { seconds: spec.messageRetentionSeconds } }
    : {};
  try {
    await pubsub.createTopic({ name, ...retention });
    return 'created';
  } catch (error) {
    if (grpcCode(error) !== ALREADY_EXISTS) throw failure(`create topic ${spec.name}`, error);
  }
  // A topic the topology gives no retention keeps whatever it has.
  if (!spec.messageRetentionSeconds) return 'unchanged';
  const topic = pubsub.topic(name);
  try {
    const [current] = await topic.getMetadata();
    if (sameSeconds(durationSeconds(current.messageRetentionDuration), spec.messageRetentionSeconds))
      return 'unchanged';
    await topic.setMetadata(retention);
    return 'updated';
  } catch (error) {
    throw failure(`update topic ${spec.name}`, error);
  }
}

type CurrentSubscription = pubsubProtos.google.pubsub.v1.ISubscription;

/** The mutable settings of `current` that differ from `desired`, in the shape `setMetadata` takes. */
function subscriptionChanges(current: CurrentSubscription, desired: SubscriptionMetadata): Record<string, unknown> {
  const changes: Record<string, unknown> = {};
  if ((current.pushConfig?.pushEndpoint ?? '') !== (desired.pushConfig.pushEndpoint ?? ''))
    changes.pushConfig = desired.pushConfig;
  if ((current.ackDeadlineSeconds ?? 0) !== desired.ackDeadlineSeconds)
    changes.ackDeadlineSeconds = desired.ackDeadlineSeconds;
  if (
    !sameSeconds(durationSeconds(current.retryPolicy?.minimumBackoff), desired.retryPolicy.minimumBackoff.seconds) ||
    !sameSeconds(durationSeconds(current.retryPolicy?.maximumBackoff), desired.retryPolicy.maximumBackoff.seconds) ||
    !current.retryPolicy
  ) {
    changes.retryPolicy = desired.retryPolicy;
  }
  const deadLetter = current.deadLetterPolicy?.deadLetterTopic ? current.deadLetterPolicy : undefined;
  if (
    (deadLetter?.deadLetterTopic ?? '') !== (desired.deadLetterPolicy?.deadLetterTopic ?? '') ||
    (deadLetter &&
      desired.deadLetterPolicy &&
      (deadLetter.maxDeliveryAttempts ?? 0) !== desired.deadLetterPolicy.maxDeliveryAttempts)
  ) {
    changes.deadLetterPolicy = desired.deadLetterPolicy ?? null;
  }
  // No ttl means the subscription never expires.
  const desiredTtl = desired.expirationPolicy.ttl ? desired.expirationPolicy.ttl.seconds : undefined;
  const currentTtl = durationSeconds(current.expirationPolicy?.ttl);
  if (!sameSeconds(currentTtl, desiredTtl)) changes.expirationPolicy = desired.expirationPolicy;
  if (!sameSeconds(durationSeconds(current.messageRetentionDuration), desired.messageRetentionDuration.seconds)) {
    changes.messageRetentionDuration = desired.messageRetentionDuration;
  }
  return changes;
}

/** The Pub/Sub emulator refuses to update expiration_policy (INVALID_ARGUMENT); the service does not. */
function isEmulatorExpirationRefusal(error: unknown): boolean {
  return (
    grpcCode(error) === INVALID_ARGUMENT &&
    /expiration_policy/.test(String((error as Error).message)) &&
    /emulator/i.test(String((error as Error).message))
  );
}

async function provisionSubscription(
  topology: Topology,
  pubsub: PubSub,
  spec: SubscriptionSpec,
  metadata: SubscriptionMetadata,
  log: Logger,
  attempt = 1,
): Promise<Outcome> {
  const subscription = pubsub.subscription(subscriptionPath(topology, spec.name));
  let current: CurrentSubscription | undefined;
  try {
    [current] = await subscription.getMetadata();
  } catch (error) {
    if (grpcCode(error) !== NOT_FOUND) throw failure(`read subscription ${spec.name}`, error);
  }
  if (current) {
    const immutableChanged =
      current.topic !== topicPath(topology, spec.topic) ||
      Boolean(current.enableMessageOrdering) !== spec.enableMessageOrdering ||
      (current.filter ?? '') !== (spec.filter ?? '');
    if (!immutableChanged) {
      const changes = subscriptionChanges(current, metadata);
      if (Object.keys(changes).length === 0) return 'unchanged';
      try {
        await subscription.setMetadata(changes as never);
        return 'updated';
      } catch (error) {
        if (!('expirationPolicy' in changes && isEmulatorExpirationRefusal(error)))
          throw failure(`update subscription ${spec.name}`, error);
        log.warn('the Pub/Sub emulator cannot change an expiration policy; recreating the subscription', {
          subscription: spec.name,
        });
      }
    } else {
      // Ordering, filter and topic cannot change in place.
      log.warn('recreating subscription whose immutable settings changed', { subscription: spec.name });
    }
    await subscription.delete().catch((error: unknown) => {
      if (grpcCode(error) !== NOT_FOUND) throw failure(`delete subscription ${spec.name} to recreate it`, error);
    });
  }
  try {
    await pubsub
      .topic(topicPath(topology, spec.topic))
      .createSubscription(subscriptionPath(topology, spec.name), metadata as CreateSubscriptionOptions);
    return 'created';
  } catch (error) {
    // Created by someone else since it was read: run again to compare its settings.
    if (grpcCode(error) === ALREADY_EXISTS && attempt < 3)
      return provisionSubscription(topology, pubsub, spec, metadata, log, attempt + 1);
    throw failure(`create subscription ${spec.name}`, error);
  }
}

function bucketSettings(
  spec: BucketSpec,
): BucketMetadata & { versioning: { enabled: boolean }; lifecycle: { rule: LifecycleRule[] } } {
  return {
    versioning: { enabled: spec.versioning },
    lifecycle: {
      rule: spec.lifecycle.map(({ prefix, deleteAfterDays }) => ({
        action: { type: 'Delete' },
        condition: { age: deleteAfterDays, matchesPrefix: [prefix] },
      })),
    },
  };
}

/** A lifecycle rule in a form that compares equal whatever order and spelling the service returns. */
function ruleKey(rule: LifecycleRule): string {
  const condition = Object.entries(rule.condition ?? {})
    .filter(([, value]) => value !== undefined && value !== null)
    .map(([key, value]) => [key, Array.isArray(value) ? [...value].sort() : value] as const)
    .sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify([rule.action?.type ?? '', rule.action?.storageClass ?? '', condition]);
}

async function provisionBucket(storage: Storage, spec: BucketSpec): Promise<Outcome> {
  const settings = bucketSettings(spec);
  const bucket: Bucket = storage.bucket(spec.name);
  try {
    const [exists] = await bucket.exists();
    if (!exists) {
      try {
        await storage.createBucket(spec.name, settings);
        return 'created';
      } catch (error) {
        if ((error as { code?: number }).code !== 409) throw error;
      }
    }
    const [current] = await bucket.getMetadata();
    const currentRules = (current.lifecycle?.rule ?? []).map(ruleKey).sort();
    const desiredRules = settings.lifecycle.rule.map(ruleKey).sort();
    const sameVersioning = (current.versioning?.enabled === true) === spec.versioning;
    if (sameVersioning && JSON.stringify(currentRules) === JSON.stringify(desiredRules)) return 'unchanged';
    await bucket.setMetadata(settings);
    return 'updated';
  } catch (error) {
    throw failure(`provision bucket ${spec.name}`, error);
  }
}

function seconds(value: number) {
  const whole = Math.floor(value);
  return { seconds: whole, nanos: Math.round((value - whole) * 1e9) };
}

/** The queue settings the topology owns, by their update-mask paths (leaves: output-only siblings stay out). */
const QUEUE_FIELDS = [
  'rate_limits.max_dispatches_per_second',
  'rate_limits.max_concurrent_dispatches',
  'retry_config.max_attempts',
  'retry_config.min_backoff',
  'retry_config.max_backoff',
  'retry_config.max_doublings',
  'retry_config.max_retry_duration',
];

async function provisionQueue(
  topology: Topology,
  tasks: CloudTasksClient,
  location: string,
  spec: QueueSpec,
): Promise<Outcome> {
  const parent = tasks.locationPath(topology.projectId, location);
  const name = tasks.queuePath(topology.projectId, location, spec.name);
  const queue = {
    name,
    rateLimits: {
      maxDispatchesPerSecond: spec.maxDispatchesPerSecond,
      maxConcurrentDispatches: spec.maxConcurrentDispatches,
    },
    retryConfig: {
      maxAttempts: spec.maxAttempts,
      minBackoff: seconds(spec.minBackoffSeconds),
      maxBackoff: seconds(spec.maxBackoffSeconds),
      maxDoublings: spec.maxDoublings,
      maxRetryDuration: seconds(spec.maxRetryDurationSeconds),
    },
  };
  try {
    let current: tasksProtos.google.cloud.tasks.v2.IQueue | undefined;
    try {
      [current] = await tasks.getQueue({ name });
    } catch (error) {
      if (grpcCode(error) !== NOT_FOUND) throw error;
    }
    if (!current) {
      try {
        await tasks.createQueue({ parent, queue });
        return 'created';
      } catch (error) {
        if (grpcCode(error) !== ALREADY_EXISTS) throw error;
        [current] = await tasks.getQueue({ name });
      }
    }
    const same =
      current.rateLimits?.maxDispatchesPerSecond === spec.maxDispatchesPerSecond &&
      current.rateLimits?.maxConcurrentDispatches === spec.maxConcurrentDispatches &&
      current.retryConfig?.maxAttempts === spec.maxAttempts &&
      sameSeconds(durationSeconds(current.retryConfig?.minBackoff), spec.minBackoffSeconds) &&
      sameSeconds(durationSeconds(current.retryConfig?.maxBackoff), spec.maxBackoffSeconds) &&
      current.retryConfig?.maxDoublings === spec.maxDoublings &&
      sameSeconds(durationSeconds(current.retryConfig?.maxRetryDuration), spec.maxRetryDurationSeconds);
    if (same) return 'unchanged';
    await tasks.updateQueue({ queue, updateMask: { paths: QUEUE_FIELDS } });
    return 'updated';
  } catch (error) {
    throw failure(`provision queue ${spec.name}`, error);
  }
}
