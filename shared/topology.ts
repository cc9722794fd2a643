import type { FunctionName } from './function-names';
import { defineJobs, type JobSpec } from './jobs';

/**
 * The mesh's topology, defined once: every topic, subscription, queue, bucket, function and
 * scheduled job with its settings. The local mesh provisions it (see `provision.ts`) and the
 * Terraform deployment is checked against it, so no name is written twice.
 */

export type { FunctionName };

export interface TopicSpec {
  /** Short name (without `projects/…/topics/`). */
  name: string;
  messageRetentionSeconds?: number;
}

export interface RetryPolicySpec {
  minimumBackoffSeconds: number;
  maximumBackoffSeconds: number;
}

export interface DeadLetterPolicySpec {
  topic: string;
  maxDeliveryAttempts: number;
}

export interface SubscriptionSpec {
  name: string;
  topic: string;
  /** Push delivery to a function; pull when absent. */
  pushTo?: FunctionName;
  ackDeadlineSeconds: number;
  retryPolicy: RetryPolicySpec;
  deadLetterPolicy?: DeadLetterPolicySpec;
  enableMessageOrdering: boolean;
  filter?: string;
  /** Deleted after this long without subscribers; never when absent. */
  expirationTtlSeconds?: number;
  messageRetentionSeconds: number;
}

export interface QueueSpec {
  name: string;
  maxDispatchesPerSecond: number;
  maxConcurrentDispatches: number;
  maxAttempts: number;
  minBackoffSeconds: number;
  maxBackoffSeconds: number;
  maxDoublings: number;
  maxRetryDurationSeconds: number;
  target: FunctionName;
}

export interface BucketSpec {
  name: string;
  versioning: boolean;
  /** Object prefixes with a lifecycle age in days. */
  lifecycle: Array<{ prefix: string; deleteAfterDays: number }>;
}

export interface FunctionSpec {
  name: FunctionName;
  /** The Functions Framework target registered by `functions/`. */
  entryPoint: string;
  signature: 'cloudevent' | 'http';
  memoryMb: number;
  timeoutSeconds: number;
  minInstances: number;
  maxInstances: number;
  /** For event functions: failed attempts at one message before the function files it as a dead letter. */
  maxAttempts?: number;
}

export interface TopologyOptions {
  projectId: string;
  /** Prefix of every name; `spine-` by default. */
  prefix?: string;
  bucket: string;
  /** Period of the interval flush (`SPINE_INTERVAL_MS`), in whole minutes. */
  persistIntervalMs?: number;
  /** Days the event archive keeps its objects (Terraform `archive_retention_days`); 30 by default. */
  archiveRetentionDays?: number;
}

/**
 * Where and how every contact-writes event is archived, in the layout of a Pub/Sub Cloud Storage
 * subscription with the text format: objects named
 * `<objectPrefix><datetime as datetimeFormat>_<uuid><suffix>`, each holding one message's data
 * (the CloudEvents JSON) per line. Object names sort by the time their batch began.
 */
export interface ArchiveSpec {
  /**
   * Every contact-writes event into the archive: a Cloud Storage subscription in the cloud; locally
   * a pull subscription the archiver creates and drains (apart from `subscriptions`, so a mesh
   * without an archiver does not pile up messages nobody pulls).
   */
  subscription: SubscriptionSpec;
  /** Prefix of every archive object in the state bucket (`filename_prefix`). */
  objectPrefix: string;
  /** `filename_datetime_format`: UTC, one folder per day and hour, so a time range is a name range. */
  datetimeFormat: 'YYYY-MM-DD/hh/mm-ss';
  /** `filename_suffix`. */
  suffix: string;
  /** `max_duration` in the cloud (Pub/Sub's minimum is one minute); the local archiver uses its own, shorter. */
  maxDurationSeconds: number;
  /** `max_bytes`: a batch reaching this many bytes starts a new object. */
  maxBytes: number;
  /** Lifecycle age of the archive's objects. */
  retentionDays: number;
}

export interface Topology {
  projectId: string;
  prefix: string;
  topics: {
    contactWrites: TopicSpec;
    groupChanges: TopicSpec;
    deadLetters: TopicSpec;
    /** Where the dead-letter subscription's own failures go, held for an operator. */
    deadLettersFinal: TopicSpec;
    /** Contact writes of networks whose persistence is batched, waiting for their flush. */
    pendingWrites: TopicSpec;
    health: TopicSpec;
  };
  subscriptions: {
    materialize: SubscriptionSpec;
    deadLetterStore: SubscriptionSpec;
    deadLettersHold: SubscriptionSpec;
    /** Pulled by `persist`, acknowledged only once a write is in the state: the durable buffer of batches. */
    pending: SubscriptionSpec;
  };
  archive: ArchiveSpec;
  queues: { persist: QueueSpec; snapshots: QueueSpec };
  bucket: BucketSpec;
  functions: Record<FunctionName, FunctionSpec>;
  /** Cloud Scheduler jobs (see shared/jobs.ts). */
  jobs: JobSpec[];
  /** Settings of the subscriptions clients create for `subscribe` and for write acknowledgements. */
  clientSubscriptions: Omit<SubscriptionSpec, 'name' | 'topic' | 'pushTo' | 'filter'>;
}

const DAY = 24 * 60 * 60;

/** Default days the event archive is kept. */
export const DEFAULT_ARCHIVE_RETENTION_DAYS = 30;

/** Failed attempts at a contact write before materialize files it as a dead letter. */
export const MATERIALIZE_MAX_DELIVERY_ATTEMPTS = 5;
/** The subscription's own dead-letter policy is the backstop, for failures the function cannot count (crashes, timeouts). */
const MATERIALIZE_BACKSTOP_ATTEMPTS = 10;

export function defineTopology(options: TopologyOptions): Topology {
  const prefix = options.prefix ?? 'spine-';
  const name = (suffix: string) => `${prefix}${suffix}`;
  const deadLetters = name('dead-letters');
  const deadLettersFinal = name('dead-letters-final');
  const archiveRetentionDays = options.archiveRetentionDays ?? DEFAULT_ARCHIVE_RETENTION_DAYS;
  return {
    projectId: options.projectId,
    prefix,
    topics: {
      contactWrites: { name: name('contact-writes'), messageRetentionSeconds: 7 * DAY },
      groupChanges: { name: name('group-changes') },
      deadLetters: { name: deadLetters },
      deadLettersFinal: { name: deadLettersFinal },
      pendingWrites: { name: name('pending-writes'), messageRetentionSeconds: 7 * DAY },
      health: { name: name('health') },
    },
    subscriptions: {
      materialize: {
        name: name('materialize'),
        topic: name('contact-writes'),
        pushTo: 'materialize',
        ackDeadlineSeconds: 60,
        retryPolicy: { minimumBackoffSeconds: 1, maximumBackoffSeconds: 60 },
        deadLetterPolicy: { topic: deadLetters, maxDeliveryAttempts: MATERIALIZE_BACKSTOP_ATTEMPTS },
        enableMessageOrdering: true,
        messageRetentionSeconds: 7 * DAY,
      },
      deadLetterStore: {
        name: name('dead-letter-store'),
        topic: deadLetters,
        pushTo: 'deadletter',
        ackDeadlineSeconds: 30,
        retryPolicy: { minimumBackoffSeconds: 5, maximumBackoffSeconds: 600 },
        deadLetterPolicy: { topic: deadLettersFinal, maxDeliveryAttempts: 20 },
        enableMessageOrdering: false,
        messageRetentionSeconds: 7 * DAY,
      },
      // Pulled by nobody: dead letters that could not even be stored wait here for an operator.
      deadLettersHold: {
        name: name('dead-letters-hold'),
        topic: deadLettersFinal,
        ackDeadlineSeconds: 60,
        retryPolicy: { minimumBackoffSeconds: 10, maximumBackoffSeconds: 600 },
        enableMessageOrdering: false,
        messageRetentionSeconds: 7 * DAY,
      },
      pending: {
        name: name('pending'),
        topic: name('pending-writes'),
        // Long enough for a flush, short enough that what a crashed flush held is soon pending again.
        ackDeadlineSeconds: 60,
        // A flush hands back writes of later windows; they must be there again at once for their
        // own window's flush, not after a growing backoff.
        retryPolicy: { minimumBackoffSeconds: 0, maximumBackoffSeconds: 0 },
        deadLetterPolicy: { topic: deadLetters, maxDeliveryAttempts: 20 },
        enableMessageOrdering: false,
        messageRetentionSeconds: 7 * DAY,
      },
    },
    archive: {
      subscription: {
        name: name('archive'),
        topic: name('contact-writes'),
        // Short: what a crashed local archiver held is archived by its successor within seconds.
        ackDeadlineSeconds: 10,
        retryPolicy: { minimumBackoffSeconds: 1, maximumBackoffSeconds: 60 },
        enableMessageOrdering: false,
        messageRetentionSeconds: 7 * DAY,
      },
      objectPrefix: 'archive/contact-writes/',
      datetimeFormat: 'YYYY-MM-DD/hh/mm-ss',
      suffix: '.jsonl',
      maxDurationSeconds: 60,
      maxBytes: 100 * 1024 * 1024,
      retentionDays: archiveRetentionDays,
    },
    queues: {
      persist: {
        name: name('persist'),
        maxDispatchesPerSecond: 500,
        // One flush at a time: each drains everything pending, so a group is written once per run.
        maxConcurrentDispatches: 1,
        maxAttempts: 100,
        minBackoffSeconds: 0.5,
        maxBackoffSeconds: 60,
        maxDoublings: 5,
        maxRetryDurationSeconds: 0,
        target: 'persist',
      },
      snapshots: {
        name: name('snapshots'),
        maxDispatchesPerSecond: 10,
        maxConcurrentDispatches: 2,
        maxAttempts: 10,
        minBackoffSeconds: 1,
        maxBackoffSeconds: 300,
        maxDoublings: 4,
        maxRetryDurationSeconds: 0,
        target: 'snapshot',
      },
    },
    bucket: {
      name: options.bucket,
      versioning: true,
      lifecycle: [
        { prefix: 'dead-letters/', deleteAfterDays: 30 },
        { prefix: 'health/', deleteAfterDays: 7 },
        { prefix: 'archive/', deleteAfterDays: archiveRetentionDays },
      ],
    },
    functions: {
      materialize: {
        name: 'materialize',
        entryPoint: 'materialize',
        signature: 'cloudevent',
        memoryMb: 512,
        timeoutSeconds: 60,
        minInstances: 0,
        maxInstances: 20,
        maxAttempts: MATERIALIZE_MAX_DELIVERY_ATTEMPTS,
      },
      deadletter: {
        name: 'deadletter',
        entryPoint: 'deadletter',
        signature: 'cloudevent',
        memoryMb: 256,
        timeoutSeconds: 30,
        minInstances: 0,
        maxInstances: 2,
      },
      persist: {
        name: 'persist',
        entryPoint: 'persist',
        signature: 'http',
        memoryMb: 512,
        timeoutSeconds: 300,
        minInstances: 0,
        maxInstances: 10,
      },
      snapshot: {
        name: 'snapshot',
        entryPoint: 'snapshot',
        signature: 'http',
        memoryMb: 1024,
        timeoutSeconds: 540,
        minInstances: 0,
        maxInstances: 2,
      },
      health: {
        name: 'health',
        entryPoint: 'health',
        signature: 'http',
        memoryMb: 256,
        timeoutSeconds: 120,
        minInstances: 0,
        maxInstances: 1,
      },
    },
    jobs: defineJobs(
      prefix,
      options.persistIntervalMs ? { persistIntervalMinutes: options.persistIntervalMs / 60_000 } : {},
    ),
    clientSubscriptions: {
      ackDeadlineSeconds: 20,
      retryPolicy: { minimumBackoffSeconds: 1, maximumBackoffSeconds: 30 },
      deadLetterPolicy: { topic: deadLetters, maxDeliveryAttempts: 10 },
      enableMessageOrdering: true,
      // Pub/Sub's shortest expiration: a crashed client's subscriptions go away after a day idle.
      expirationTtlSeconds: DAY,
      messageRetentionSeconds: 10 * 60,
    },
  };
}

export function allTopics(topology: Topology): TopicSpec[] {
  return Object.values(topology.topics);
}

export function allSubscriptions(topology: Topology): SubscriptionSpec[] {
  return Object.values(topology.subscriptions);
}
