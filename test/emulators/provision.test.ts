/**
 * provisionTopology against the official Pub/Sub emulator and the Storage and Tasks emulators,
 * checked by reading everything back through the official clients: what a first run creates,
 * that later runs change nothing, that mutable settings change in place and immutable ones
 * recreate, that two prefixes stay apart, and that a missing push endpoint fails before any change.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PubSub, type protos } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { CloudTasksClient } from '@google-cloud/tasks';
import { waitUntil } from '../../emulators/ports';
import { provisionTopology, type ProvisionOptions, type ProvisionReport } from '../../shared/provision';
import {
  allSubscriptions,
  allTopics,
  defineTopology,
  type SubscriptionSpec,
  type Topology,
} from '../../shared/topology';
import { createMemoryLogger, useEmulators } from '../helpers/emulators';

// The Google clients otherwise probe the GCE metadata server and warn when it is not there.
process.env.METADATA_SERVER_DETECTION ??= 'none';

type SubscriptionMetadata = protos.google.pubsub.v1.ISubscription;

const LOCATION = 'us-central1';
const emulators = useEmulators();

let pubsub: PubSub;
let storage: Storage;
let tasks: CloudTasksClient;

/** A stand-in for the functions: records every push it receives and acknowledges it (204). */
const pushes: Array<{ path: string; body: string }> = [];
let functionsServer: http.Server;
let functionsUrl: string;

beforeAll(async () => {
  const { projectId } = emulators;
  pubsub = new PubSub({ projectId, apiEndpoint: emulators.pubsub.address, emulatorMode: true });
  storage = new Storage({ apiEndpoint: emulators.storage.url, projectId });
  tasks = new CloudTasksClient(emulators.tasks.clientOptions());
  functionsServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      pushes.push({ path: req.url ?? '', body: Buffer.concat(chunks).toString() });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => functionsServer.listen(0, '127.0.0.1', resolve));
  functionsUrl = `http://127.0.0.1:${(functionsServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await pubsub?.close();
  await tasks?.close();
  await new Promise((resolve) => functionsServer?.close(resolve));
});

// ---- helpers ---------------------------------------------------------------------------------

function topologyFor(prefix: string): Topology {
  return defineTopology({ projectId: emulators.projectId, prefix, bucket: `${prefix}state-bucket` });
}

/** Endpoints of both push functions under `base` (a path on the recording server). */
function endpointsUnder(base: string): NonNullable<ProvisionOptions['endpoints']> {
  return { materialize: `${functionsUrl}/${base}/materialize`, deadletter: `${functionsUrl}/${base}/deadletter` };
}

/** Provisions with every client and a memory logger (so warnings can be asserted on). */
async function provision(topology: Topology, endpoints: ProvisionOptions['endpoints']) {
  const logger = createMemoryLogger();
  const report = await provisionTopology(
    topology,
    { pubsub, storage, tasks, location: LOCATION },
    { endpoints, logger },
  );
  return { report, logger };
}

/** Every resource name of a topology as the report spells it. */
function everything(topology: Topology): string[] {
  return [
    ...allTopics(topology).map((spec) => `topic ${spec.name}`),
    ...allSubscriptions(topology).map((spec) => `subscription ${spec.name}`),
    `bucket ${topology.bucket.name}`,
    ...Object.values(topology.queues).map((spec) => `queue ${spec.name}`),
  ].sort();
}

const sorted = (report: ProvisionReport) => ({
  created: [...report.created].sort(),
  updated: [...report.updated].sort(),
  unchanged: [...report.unchanged].sort(),
});

/** Seconds of a Duration as the client returns it (`seconds` is a string, `nanos` a number). */
function secondsOf(duration: { seconds?: unknown; nanos?: number | null } | null | undefined): number | null {
  if (!duration) return null;
  return Number(duration.seconds ?? 0) + (duration.nanos ?? 0) / 1e9;
}

async function subscriptionMetadata(name: string): Promise<SubscriptionMetadata> {
  const [metadata] = await pubsub.subscription(name).getMetadata();
  return metadata;
}

/** What the emulator reports for a subscription, in the terms of SubscriptionSpec. */
function settingsOf(metadata: SubscriptionMetadata) {
  return {
    topic: metadata.topic,
    pushEndpoint: metadata.pushConfig?.pushEndpoint || null,
    ackDeadlineSeconds: metadata.ackDeadlineSeconds,
    retryPolicy: {
      minimumBackoffSeconds: secondsOf(metadata.retryPolicy?.minimumBackoff),
      maximumBackoffSeconds: secondsOf(metadata.retryPolicy?.maximumBackoff),
    },
    deadLetterPolicy: metadata.deadLetterPolicy?.deadLetterTopic
      ? {
          topic: metadata.deadLetterPolicy.deadLetterTopic,
          maxDeliveryAttempts: metadata.deadLetterPolicy.maxDeliveryAttempts,
        }
      : null,
    enableMessageOrdering: Boolean(metadata.enableMessageOrdering),
    filter: metadata.filter ?? '',
    expirationTtlSeconds: secondsOf(metadata.expirationPolicy?.ttl),
    messageRetentionSeconds: secondsOf(metadata.messageRetentionDuration),
  };
}

/** What a subscription of the topology must look like, given the push endpoint base URLs. */
function expectedSettings(
  topology: Topology,
  spec: SubscriptionSpec,
  endpoints: NonNullable<ProvisionOptions['endpoints']>,
) {
  const project = `projects/${topology.projectId}`;
  return {
    topic: `${project}/topics/${spec.topic}`,
    pushEndpoint: spec.pushTo ? `${endpoints[spec.pushTo]}/${project}/topics/${spec.topic}` : null,
    ackDeadlineSeconds: spec.ackDeadlineSeconds,
    retryPolicy: { ...spec.retryPolicy },
    deadLetterPolicy: spec.deadLetterPolicy
      ? {
          topic: `${project}/topics/${spec.deadLetterPolicy.topic}`,
          maxDeliveryAttempts: spec.deadLetterPolicy.maxDeliveryAttempts,
        }
      : null,
    enableMessageOrdering: spec.enableMessageOrdering,
    filter: spec.filter ?? '',
    // Never expires unless the topology says so.
    expirationTtlSeconds: spec.expirationTtlSeconds ?? null,
    messageRetentionSeconds: spec.messageRetentionSeconds,
  };
}

async function topicNames(prefix: string): Promise<string[]> {
  const [topics] = await pubsub.getTopics();
  return topics
    .map((topic) => topic.name.split('/').pop()!)
    .filter((name) => name.startsWith(prefix))
    .sort();
}

async function subscriptionNames(prefix: string): Promise<string[]> {
  const [subscriptions] = await pubsub.getSubscriptions();
  return subscriptions
    .map((subscription) => subscription.name.split('/').pop()!)
    .filter((name) => name.startsWith(prefix))
    .sort();
}

async function queueNames(prefix: string): Promise<string[]> {
  const [queues] = await tasks.listQueues({ parent: tasks.locationPath(emulators.projectId, LOCATION) });
  return queues
    .map((queue) => queue.name!.split('/').pop()!)
    .filter((name) => name.startsWith(prefix))
    .sort();
}

async function getQueue(topology: Topology) {
  const [queue] = await tasks.getQueue({
    name: tasks.queuePath(topology.projectId, LOCATION, topology.queues.persist.name),
  });
  return queue;
}

/** Everything a topology consists of, as read back, for before/after comparisons. */
async function readBack(topology: Topology) {
  const subscriptions = await Promise.all(
    allSubscriptions(topology).map(async (spec) => settingsOf(await subscriptionMetadata(spec.name))),
  );
  const topics = await Promise.all(
    allTopics(topology).map(async (spec) =>
      secondsOf((await pubsub.topic(spec.name).getMetadata())[0].messageRetentionDuration),
    ),
  );
  const [bucket] = await storage.bucket(topology.bucket.name).getMetadata();
  const queue = await getQueue(topology);
  return {
    subscriptions,
    topics,
    bucket: { versioning: bucket.versioning, lifecycle: bucket.lifecycle },
    queue: { rateLimits: queue.rateLimits, retryConfig: queue.retryConfig },
  };
}

/** Receives messages from a pull subscription until `count` arrived (acking them) or the time is up. */
async function pull(name: string, count: number, timeoutMs = 10_000): Promise<string[]> {
  const subscription = pubsub.subscription(name);
  const received: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, timeoutMs);
      subscription.on('error', reject);
      subscription.on('message', (message) => {
        received.push(message.data.toString());
        message.ack();
        if (received.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    await subscription.close();
  }
  return received;
}

// ---- tests -----------------------------------------------------------------------------------

describe('provisionTopology', () => {
  test('a first run creates every topic, subscription, the bucket and the queue with the topology settings', async () => {
    const topology = topologyFor('first-');
    const endpoints = endpointsUnder('first');
    const { report } = await provision(topology, endpoints);

    expect(sorted(report)).toEqual({ created: everything(topology), updated: [], unchanged: [] });

    // Topics: exactly the topology's, with the contact-writes retention.
    expect(await topicNames('first-')).toEqual([
      'first-contact-writes',
      'first-dead-letters',
      'first-dead-letters-final',
      'first-group-changes',
      'first-health',
      'first-pending-writes',
    ]);
    const [contactWrites] = await pubsub.topic('first-contact-writes').getMetadata();
    expect(secondsOf(contactWrites.messageRetentionDuration)).toBe(7 * 24 * 3600);

    // Subscriptions: every setting, read back.
    expect(await subscriptionNames('first-')).toEqual([
      'first-dead-letter-store',
      'first-dead-letters-hold',
      'first-materialize',
      'first-pending',
    ]);
    for (const spec of allSubscriptions(topology)) {
      expect(settingsOf(await subscriptionMetadata(spec.name))).toEqual(expectedSettings(topology, spec, endpoints));
    }
    // The materialize subscription spelled out, so the expectations above are not only the spec echoed back.
    const project = `projects/${emulators.projectId}`;
    expect(settingsOf(await subscriptionMetadata('first-materialize'))).toEqual({
      topic: `${project}/topics/first-contact-writes`,
      pushEndpoint: `${functionsUrl}/first/materialize/${project}/topics/first-contact-writes`,
      ackDeadlineSeconds: 60,
      retryPolicy: { minimumBackoffSeconds: 1, maximumBackoffSeconds: 60 },
      deadLetterPolicy: { topic: `${project}/topics/first-dead-letters`, maxDeliveryAttempts: 10 },
      enableMessageOrdering: true,
      filter: '',
      expirationTtlSeconds: null,
      messageRetentionSeconds: 7 * 24 * 3600,
    });
    expect(settingsOf(await subscriptionMetadata('first-dead-letters-hold'))).toMatchObject({
      pushEndpoint: null,
      deadLetterPolicy: null,
      enableMessageOrdering: false,
    });

    // The bucket: versioning and the lifecycle rules per prefix.
    const [bucket] = await storage.bucket('first-state-bucket').getMetadata();
    expect(bucket.versioning).toEqual({ enabled: true });
    expect(bucket.lifecycle?.rule).toEqual([
      { action: { type: 'Delete' }, condition: { age: 30, matchesPrefix: ['dead-letters/'] } },
      { action: { type: 'Delete' }, condition: { age: 7, matchesPrefix: ['health/'] } },
      // The event archive's retention (issue 21).
      { action: { type: 'Delete' }, condition: { age: 30, matchesPrefix: ['archive/'] } },
    ]);

    // The queue: rate limits and retry configuration.
    expect(await queueNames('first-')).toEqual(['first-persist', 'first-snapshots']);
    const queue = await getQueue(topology);
    expect(queue.rateLimits).toMatchObject({ maxDispatchesPerSecond: 500, maxConcurrentDispatches: 1 });
    expect(queue.retryConfig).toMatchObject({ maxAttempts: 100, maxDoublings: 5 });
    expect(secondsOf(queue.retryConfig?.minBackoff)).toBe(0.5);
    expect(secondsOf(queue.retryConfig?.maxBackoff)).toBe(60);
    expect(secondsOf(queue.retryConfig?.maxRetryDuration) ?? 0).toBe(0); // unlimited
  });

  test('a second run creates nothing, changes nothing and reports everything unchanged', async () => {
    const topology = topologyFor('again-');
    const endpoints = endpointsUnder('again');
    await provision(topology, endpoints);
    const before = await readBack(topology);
    // A message waiting in the pull subscription survives only if it is not recreated.
    await pubsub.topic('again-dead-letters-final').publishMessage({ data: Buffer.from('kept') });

    const second = await provision(topology, endpoints);
    const third = await provision(topology, endpoints);

    expect(sorted(second.report)).toEqual({ created: [], updated: [], unchanged: everything(topology) });
    expect(sorted(third.report)).toEqual({ created: [], updated: [], unchanged: everything(topology) });
    expect(second.logger.entries.filter((entry) => entry.severity !== 'INFO')).toEqual([]);
    expect(await readBack(topology)).toEqual(before);
    expect(await pull('again-dead-letters-hold', 1)).toEqual(['kept']);
  });

  test('a changed ack deadline, retry policy and push endpoint are applied in place', async () => {
    const topology = topologyFor('inplace-');
    await provision(topology, endpointsUnder('old'));
    await pubsub.topic('inplace-dead-letters-final').publishMessage({ data: Buffer.from('waiting') });

    const changed = structuredClone(topology);
    changed.subscriptions.deadLettersHold.ackDeadlineSeconds = 120;
    changed.subscriptions.deadLettersHold.retryPolicy = { minimumBackoffSeconds: 20, maximumBackoffSeconds: 300 };
    changed.subscriptions.deadLetterStore.deadLetterPolicy!.maxDeliveryAttempts = 7;
    const newEndpoints = endpointsUnder('new');
    const { report, logger } = await provision(changed, newEndpoints);

    expect(sorted(report)).toEqual({
      created: [],
      updated: [
        'subscription inplace-dead-letter-store',
        'subscription inplace-dead-letters-hold',
        'subscription inplace-materialize',
      ],
      unchanged: everything(topology).filter(
        (name) =>
          ![
            'subscription inplace-dead-letter-store',
            'subscription inplace-dead-letters-hold',
            'subscription inplace-materialize',
          ].includes(name),
      ),
    });
    expect(logger.entries.filter((entry) => entry.severity === 'WARNING')).toEqual([]);
    for (const spec of allSubscriptions(changed)) {
      expect(settingsOf(await subscriptionMetadata(spec.name))).toEqual(expectedSettings(changed, spec, newEndpoints));
    }
    // Still the same subscription: the message published before the change is still there.
    expect(await pull('inplace-dead-letters-hold', 1)).toEqual(['waiting']);

    // And the emulator now pushes to the new endpoint.
    const project = `projects/${emulators.projectId}`;
    await pubsub
      .topic('inplace-contact-writes')
      .publishMessage({ data: Buffer.from('to the new endpoint'), orderingKey: 'net/group' });
    await waitUntil(
      () => pushes.some((push) => push.body.includes(Buffer.from('to the new endpoint').toString('base64'))),
      {
        what: 'a push to the new endpoint',
      },
    );
    const delivered = pushes.filter((push) =>
      push.body.includes(Buffer.from('to the new endpoint').toString('base64')),
    );
    expect(new Set(delivered.map((push) => push.path))).toEqual(
      new Set([`/new/materialize/${project}/topics/inplace-contact-writes`]),
    );
  });

  test('changed topic retention, bucket and queue settings are applied in place', async () => {
    const topology = topologyFor('settings-');
    const endpoints = endpointsUnder('settings');
    await provision(topology, endpoints);
    await storage.bucket('settings-state-bucket').file('kept.json').save('{}');

    const changed = structuredClone(topology);
    changed.topics.contactWrites.messageRetentionSeconds = 24 * 3600;
    changed.bucket.versioning = false;
    changed.bucket.lifecycle = [{ prefix: 'dead-letters/', deleteAfterDays: 14 }];
    changed.queues.persist.maxConcurrentDispatches = 10;
    changed.queues.persist.maxBackoffSeconds = 30;
    const { report } = await provision(changed, endpoints);

    const touched = ['bucket settings-state-bucket', 'queue settings-persist', 'topic settings-contact-writes'];
    expect(sorted(report)).toEqual({
      created: [],
      updated: touched,
      unchanged: everything(topology).filter((name) => !touched.includes(name)),
    });

    const [topic] = await pubsub.topic('settings-contact-writes').getMetadata();
    expect(secondsOf(topic.messageRetentionDuration)).toBe(24 * 3600);
    const [bucket] = await storage.bucket('settings-state-bucket').getMetadata();
    expect(bucket.versioning?.enabled ?? false).toBe(false);
    expect(bucket.lifecycle?.rule).toEqual([
      { action: { type: 'Delete' }, condition: { age: 14, matchesPrefix: ['dead-letters/'] } },
    ]);
    const [kept] = await storage.bucket('settings-state-bucket').file('kept.json').exists();
    expect(kept).toBe(true); // the same bucket, not a new one
    const queue = await getQueue(topology);
    expect(queue.rateLimits).toMatchObject({ maxDispatchesPerSecond: 500, maxConcurrentDispatches: 10 });
    expect(secondsOf(queue.retryConfig?.maxBackoff)).toBe(30);
    expect(queue.retryConfig).toMatchObject({ maxAttempts: 100, maxDoublings: 5 });

    // And the changed topology is now what a further run finds.
    expect(sorted((await provision(changed, endpoints)).report)).toEqual({
      created: [],
      updated: [],
      unchanged: everything(topology),
    });
  });

  test('a changed ordering setting, which cannot change in place, recreates the subscription', async () => {
    const topology = topologyFor('order-');
    const endpoints = endpointsUnder('order');
    await provision(topology, endpoints);
    expect((await subscriptionMetadata('order-materialize')).enableMessageOrdering).toBe(true);

    const changed = structuredClone(topology);
    changed.subscriptions.materialize.enableMessageOrdering = false;
    const { report, logger } = await provision(changed, endpoints);

    expect(sorted(report)).toEqual({
      created: ['subscription order-materialize'],
      updated: [],
      unchanged: everything(topology).filter((name) => name !== 'subscription order-materialize'),
    });
    expect(logger.entries).toContainEqual(
      expect.objectContaining({
        severity: 'WARNING',
        fields: expect.objectContaining({ subscription: 'order-materialize' }),
      }),
    );
    // Recreated with every other setting intact.
    const recreated = settingsOf(await subscriptionMetadata('order-materialize'));
    expect(recreated).toEqual(expectedSettings(changed, changed.subscriptions.materialize, endpoints));
    expect(recreated.enableMessageOrdering).toBe(false);
    expect(await subscriptionNames('order-')).toEqual([
      'order-dead-letter-store',
      'order-dead-letters-hold',
      'order-materialize',
      'order-pending',
    ]);

    // Stable from then on.
    expect(sorted((await provision(changed, endpoints)).report).created).toEqual([]);
  });

  test('an expiration change, which the emulator cannot update in place, is still applied', async () => {
    const topology = topologyFor('expiry-');
    const endpoints = endpointsUnder('expiry');
    await provision(topology, endpoints);

    const expiring = structuredClone(topology);
    expiring.subscriptions.deadLettersHold.expirationTtlSeconds = 2 * 24 * 3600;
    const first = await provision(expiring, endpoints);
    expect(first.report.created).toEqual(['subscription expiry-dead-letters-hold']);
    expect(settingsOf(await subscriptionMetadata('expiry-dead-letters-hold')).expirationTtlSeconds).toBe(2 * 24 * 3600);

    // And back to never expiring.
    await provision(topology, endpoints);
    expect(settingsOf(await subscriptionMetadata('expiry-dead-letters-hold'))).toEqual(
      expectedSettings(topology, topology.subscriptions.deadLettersHold, endpoints),
    );
  });

  test('two prefixes provision side by side without touching each other', async () => {
    const a = topologyFor('a-');
    const b = topologyFor('b-');
    const endpointsA = endpointsUnder('a');
    const endpointsB = endpointsUnder('b');

    const [reportA, reportB] = await Promise.all([provision(a, endpointsA), provision(b, endpointsB)]);
    expect(sorted(reportA.report)).toEqual({ created: everything(a), updated: [], unchanged: [] });
    expect(sorted(reportB.report)).toEqual({ created: everything(b), updated: [], unchanged: [] });
    expect(everything(a).some((name) => everything(b).includes(name))).toBe(false);

    expect(await topicNames('a-')).toHaveLength(allTopics(a).length);
    expect(await topicNames('b-')).toHaveLength(allTopics(b).length);
    expect(await queueNames('a-')).toEqual(['a-persist', 'a-snapshots']);
    expect(await queueNames('b-')).toEqual(['b-persist', 'b-snapshots']);
    for (const spec of allSubscriptions(b)) {
      // b's subscriptions point at b's topics, dead-letter topics and endpoints only.
      expect(settingsOf(await subscriptionMetadata(spec.name))).toEqual(expectedSettings(b, spec, endpointsB));
    }

    // Changing b (in place and by recreation) leaves a exactly as it was.
    const aBefore = await readBack(a);
    const changedB = structuredClone(b);
    changedB.subscriptions.materialize.ackDeadlineSeconds = 90;
    changedB.subscriptions.deadLettersHold.enableMessageOrdering = true;
    changedB.queues.persist.maxConcurrentDispatches = 5;
    const again = await provision(changedB, endpointsUnder('b2'));
    for (const name of [...again.report.created, ...again.report.updated, ...again.report.unchanged])
      expect(name).toMatch(/^\w+ b-/);
    expect(again.report.updated.length + again.report.created.length).toBeGreaterThan(0);

    expect(await readBack(a)).toEqual(aBefore);
    expect(sorted((await provision(a, endpointsA)).report)).toEqual({
      created: [],
      updated: [],
      unchanged: everything(a),
    });
  });

  test('a push subscription without an endpoint fails, naming the function, before anything is created', async () => {
    const topology = topologyFor('noend-');

    await expect(provision(topology, { materialize: `${functionsUrl}/noend/materialize` })).rejects.toThrow(
      /no endpoint given for function deadletter\b.*noend-dead-letter-store/,
    );
    const none = provision(topology, undefined);
    await expect(none).rejects.toThrow(/function materialize\b/);
    await expect(none).rejects.toThrow(/function deadletter\b/);

    // Nothing of the topology exists: the run failed before its first change.
    expect(await topicNames('noend-')).toEqual([]);
    expect(await subscriptionNames('noend-')).toEqual([]);
    expect(await queueNames('noend-')).toEqual([]);
    expect((await storage.bucket('noend-state-bucket').exists())[0]).toBe(false);
  });
});
