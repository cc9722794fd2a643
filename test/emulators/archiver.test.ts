/**
 * The local archiver against the real Pub/Sub and Storage emulators: a batch is acknowledged only
 * once its object is written (a failing write keeps it unacknowledged and is retried), and a clean
 * stop writes and acknowledges what it holds.
 */
import { randomUUID } from 'node:crypto';
import { eventually } from 'super-spine/testing';
import { Archiver, ensureArchiveSubscription } from '../../cli/archiver';
import { createEvent, encodePubSubMessage } from '../../shared/events';
import { EventType } from '../../shared/events/types';
import { ArchiveReader } from '../../shared/history/archive-reader';
import { formatStamp } from '../../shared/hlc';
import { createPubSubClient, createStorageClient, createSubscriberClient } from '../../shared/mesh/clients';
import { defineTopology } from '../../shared/topology';
import { createMemoryLogger, useEmulators } from '../helpers/emulators';

jest.setTimeout(60_000);

const emulators = useEmulators({ tasks: false });
const run = randomUUID().slice(0, 8);

function clients() {
  const env = emulators.env();
  const settings = {
    projectId: emulators.projectId,
    pubsubEmulatorHost: env.PUBSUB_EMULATOR_HOST!,
    storageEmulatorHost: env.STORAGE_EMULATOR_HOST!,
  };
  return {
    pubsub: createPubSubClient(settings),
    storage: createStorageClient(settings),
    subscriber: createSubscriberClient(settings),
  };
}

async function setUp(label: string, bucket: string) {
  const { pubsub, storage, subscriber } = clients();
  const topology = defineTopology({ projectId: emulators.projectId, prefix: `${label}-${run}-`, bucket });
  await pubsub.createTopic(topology.topics.contactWrites.name);
  const subscriptionPath = await ensureArchiveSubscription(topology, pubsub);
  const publish = async (count: number) => {
    const topic = pubsub.topic(topology.topics.contactWrites.name);
    await Promise.all(
      Array.from({ length: count }, (_, i) => {
        const message = encodePubSubMessage(
          createEvent(
            EventType.ContactWritten,
            {
              networkId: 'n',
              groupId: 'g',
              contactId: `c${i}`,
              content: i,
              writerId: 'w',
              seq: 1,
              stamp: formatStamp({ wallTime: Date.now(), logical: i, writerId: 'w' }),
            },
            { source: '//test' },
          ),
        );
        return topic.publishMessage({ data: message.data, attributes: { ...message.attributes } });
      }),
    );
  };
  const reader = new ArchiveReader(storage, bucket, topology.archive, { maxBatchMs: 60_000 });
  const archiverWith = (maxBatchMs: number) =>
    new Archiver({
      subscriber,
      storage,
      bucket,
      layout: topology.archive,
      subscriptionPath,
      maxBatchMs,
      logger: createMemoryLogger(),
    });
  return { pubsub, storage, subscriber, subscriptionPath, publish, reader, archiverWith };
}

test('a write that fails keeps its batch unacknowledged and is retried; the batch is acknowledged once written', async () => {
  const bucket = `archiver-missing-${run}`;
  const { pubsub, storage, subscriber, publish, reader, archiverWith } = await setUp('fail', bucket);
  const archiver = archiverWith(100);
  archiver.start();
  try {
    await publish(5);
    // The bucket does not exist yet: every write fails, nothing is acknowledged.
    await eventually(() => expect(archiver.stats()).toMatchObject({ inHand: 5, archived: 0 }), { timeoutMs: 20_000 });
    await eventually(() => expect(archiver.stats().writeFailures).toBeGreaterThanOrEqual(2), { timeoutMs: 20_000 });
    expect(archiver.stats().archived).toBe(0);
    await storage.createBucket(bucket);
    await eventually(() => expect(archiver.stats()).toMatchObject({ inHand: 0, archived: 5, objects: 1 }), {
      timeoutMs: 30_000,
    });
    const contents = (await reader.read()).map(
      (event) => event.type === EventType.ContactWritten && event.data.content,
    );
    expect(contents.sort()).toEqual([0, 1, 2, 3, 4]);
  } finally {
    await archiver.stop({ quietMs: 0 });
    await subscriber.close();
    await pubsub.close();
  }
});

test('a clean stop writes what the archiver holds and acknowledges it: nothing is delivered again', async () => {
  const bucket = `archiver-stop-${run}`;
  const { pubsub, storage, subscriber, subscriptionPath, publish, reader, archiverWith } = await setUp('stop', bucket);
  await storage.createBucket(bucket);
  // A batch window longer than the test: only the stop writes it.
  const archiver = archiverWith(600_000);
  archiver.start();
  try {
    await publish(40);
    await eventually(() => expect(archiver.stats().inHand).toBe(40), { timeoutMs: 20_000 });
    expect(await reader.listObjects()).toEqual([]);
    expect(await archiver.stop({ quietMs: 0 })).toMatchObject({ inHand: 0, archived: 40, objects: 1 });
    expect(await reader.read()).toHaveLength(40);
    // Past the archiver's 10 s lease, an unacknowledged message would be delivered again.
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    const [{ receivedMessages }] = await subscriber.pull({
      subscription: subscriptionPath,
      maxMessages: 100,
      returnImmediately: true,
    });
    expect(receivedMessages ?? []).toEqual([]);
  } finally {
    await subscriber.close();
    await pubsub.close();
  }
});
