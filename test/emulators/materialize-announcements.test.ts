/**
 * What the materialize function announces on the group-changes topic for each kind of event it
 * applies: the handler in process over a MemoryStorage state, its ChangePublisher on the official
 * Pub/Sub emulator, read back through a subscription of the topic. A redelivered write, a repeated
 * group delete and a network delete older than the network's save are announced `unchanged`, so
 * subscribers skip them and their writers still get an acknowledgement.
 */
import { randomUUID } from 'node:crypto';
import type { CloudEvent } from '@google-cloud/functions-framework';
import type { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import {
  createEvent,
  emptyGroupState,
  EventType,
  MemoryStorage,
  type AnySpineEvent,
  type EventDataByType,
  type EventTypeName,
  type NetworkState,
} from 'super-spine';
import { DeadLetterStore } from 'super-spine/mesh';
import { eventually } from 'super-spine/testing';
import { createMaterializeHandler } from '../../functions/materialize/handler';
import { PendingWrites } from '../../functions/pending-writes';
import type { PubSubPushData } from '../../functions/pubsub-push';
import { fromPubSubMessage, toPubSubMessage } from '../../shared/events';
import { formatStamp } from '../../shared/hlc';
import { ChangePublisher } from '../../shared/mesh/change-publisher';
import { createPubSubClient, createStorageClient, createSubscriberClient } from '../../shared/mesh/clients';
import { ContentStore } from '../../shared/mesh/content-store';
import { createMemoryLogger, useEmulators } from '../helpers/emulators';

process.env.METADATA_SERVER_DETECTION ??= 'none';
jest.setTimeout(60_000);

const emulators = useEmulators({ tasks: false });
const id = `ann${randomUUID().slice(0, 6)}`;
const bucket = `${id}-bucket`;
const received: AnySpineEvent[] = [];
let pubsub: PubSub;
let storage: Storage;
let watcher: ReturnType<typeof createSubscriberClient>;
let watchPath: string;
let state: MemoryStorage;
let changes: ChangePublisher;
let pending: PendingWrites;
let materialize: (cloudEvent: CloudEvent<PubSubPushData>) => Promise<void>;

beforeAll(async () => {
  const { projectId } = emulators;
  const pubsubSettings = { projectId, pubsubEmulatorHost: emulators.pubsub.address };
  pubsub = createPubSubClient(pubsubSettings);
  storage = createStorageClient({ projectId, storageEmulatorHost: emulators.storage.url });
  const [topic] = await pubsub.createTopic(`${id}-group-changes`);
  await topic.createSubscription(`${id}-watch`);
  // Pulled synchronously: a streaming subscriber on the emulator took over a minute to close.
  watcher = createSubscriberClient(pubsubSettings);
  watchPath = `projects/${projectId}/subscriptions/${id}-watch`;
  await pubsub.createTopic(`${id}-pending`);
  state = new MemoryStorage({ writerId: `${id}-materialize` });
  changes = new ChangePublisher(pubsub, `${id}-group-changes`);
  pending = new PendingWrites(
    pubsub,
    `${id}-pending`,
    createSubscriberClient(pubsubSettings),
    `projects/${projectId}/subscriptions/${id}-pending`,
  );
  materialize = createMaterializeHandler({
    persistModeFor: () => 'immediate',
    pending,
    maxAttempts: 5,
    state,
    changes,
    deadLetters: new DeadLetterStore(storage, bucket, `${id}-dead-letters/`),
    content: new ContentStore(storage, bucket, `${id}-content/`),
    logger: createMemoryLogger(),
  });
});

afterAll(async () => {
  await watcher?.close();
  await changes?.close();
  await pending?.close();
  await state?.close();
  await pubsub?.close();
});

/** Takes what the group-changes topic has delivered so far into `received`. */
async function pullAnnouncements(): Promise<void> {
  const [{ receivedMessages }] = await watcher.pull({
    subscription: watchPath,
    maxMessages: 100,
    returnImmediately: true,
  });
  if (!receivedMessages?.length) return;
  for (const { message } of receivedMessages) {
    received.push(fromPubSubMessage({ data: Buffer.from(message!.data!), attributes: message!.attributes ?? {} }));
  }
  await watcher.acknowledge({ subscription: watchPath, ackIds: receivedMessages.map((m) => m.ackId!) });
}

let seq = 0;
/** The next origin of one writer: sequence and clock stamp both increase. */
function origin(writerId = 'alice') {
  seq += 1;
  return { writerId, seq, stamp: formatStamp({ wallTime: 1_800_000_000_000 + seq, logical: 0, writerId }) };
}

function event<T extends EventTypeName>(type: T, data: EventDataByType[T]): AnySpineEvent {
  return createEvent(type, data, { source: '//test/writer' }) as AnySpineEvent;
}

/** Pushes the event to the handler as Pub/Sub's push subscription does, and returns what it announced. */
async function push(spineEvent: AnySpineEvent, count: number): Promise<Array<Record<string, unknown>>> {
  const message = toPubSubMessage(spineEvent);
  await materialize({
    data: {
      message: {
        data: message.data.toString('base64'),
        attributes: { ...message.attributes },
        messageId: randomUUID(),
      },
    },
  } as unknown as CloudEvent<PubSubPushData>);
  const announced = () => received.filter((e) => (e.data as { causeId?: string }).causeId === spineEvent.id);
  await eventually(
    async () => {
      await pullAnnouncements();
      expect(announced()).toHaveLength(count);
    },
    { timeoutMs: 20_000 },
  );
  return announced().map((e) => ({ type: e.type, ...(e.data as object) }));
}

const GROUP = EventType.GroupChanged;
const NETWORK = EventType.NetworkChanged;

test('contact writes: the group updated by the write, unchanged when the write comes again; a bundle names every write', async () => {
  const net = `${id}-contacts`;
  const write = event(EventType.ContactWritten, {
    networkId: net,
    groupId: 'g',
    contactId: 'c',
    content: 'calm',
    ...origin(),
  });
  const first = await push(write, 1);
  expect(first).toEqual([
    { type: GROUP, networkId: net, groupId: 'g', kind: 'updated', causeId: write.id, writerId: 'alice' },
  ]);
  received.length = 0;
  expect(await push(write, 1)).toEqual([{ ...first[0], unchanged: true }]);

  const { seq: seqA, stamp: stampA } = origin('bob');
  const { seq: seqB, stamp: stampB } = origin('bob');
  const bundle = event(EventType.ContactsWritten, {
    networkId: net,
    groupId: 'g',
    writerId: 'bob',
    writes: [
      { id: 'w1', contactId: 'c1', content: 1, seq: seqA, stamp: stampA },
      { id: 'w2', contactId: 'c2', content: 2, seq: seqB, stamp: stampB },
    ],
  });
  expect(await push(bundle, 1)).toEqual([
    {
      type: GROUP,
      networkId: net,
      groupId: 'g',
      kind: 'updated',
      causeId: bundle.id,
      writerId: 'bob',
      causes: [
        { eventId: 'w1', writerId: 'bob' },
        { eventId: 'w2', writerId: 'bob' },
      ],
    },
  ]);
});

test('group saves and deletes: updated, then deleted, then a repeated delete unchanged', async () => {
  const net = `${id}-groups`;
  const save = event(EventType.GroupSaved, { networkId: net, groupId: 'g', state: emptyGroupState('g'), ...origin() });
  expect(await push(save, 1)).toEqual([
    { type: GROUP, networkId: net, groupId: 'g', kind: 'updated', causeId: save.id, writerId: 'alice' },
  ]);
  const remove = event(EventType.GroupDeleted, { networkId: net, groupId: 'g', ...origin() });
  expect(await push(remove, 1)).toEqual([
    { type: GROUP, networkId: net, groupId: 'g', kind: 'deleted', causeId: remove.id, writerId: 'alice' },
  ]);
  const again = event(EventType.GroupDeleted, { networkId: net, groupId: 'g', ...origin() });
  expect(await push(again, 1)).toEqual([
    {
      type: GROUP,
      networkId: net,
      groupId: 'g',
      kind: 'deleted',
      causeId: again.id,
      writerId: 'alice',
      unchanged: true,
    },
  ]);
});

test('network saves and deletes: each group, then the network; a delete older than the save announces the network unchanged', async () => {
  const net = `${id}-networks`;
  const networkState: NetworkState = {
    groups: new Map([
      ['root', { ...emptyGroupState('root'), group: { ...emptyGroupState('root').group, subgroupIds: ['child'] } }],
      ['child', { ...emptyGroupState('child'), group: { ...emptyGroupState('child').group, parentId: 'root' } }],
    ]),
    currentGroupId: 'root',
    rootGroupId: 'root',
  };
  const save = event(EventType.NetworkSaved, { networkId: net, state: networkState, ...origin() });
  const cause = { causeId: save.id, writerId: 'alice' };
  const saved = await push(save, 3);
  expect(
    saved.filter((a) => a.type === GROUP).sort((a, b) => String(a.groupId).localeCompare(String(b.groupId))),
  ).toEqual([
    { type: GROUP, networkId: net, groupId: 'child', kind: 'updated', ...cause },
    { type: GROUP, networkId: net, groupId: 'root', kind: 'updated', ...cause },
  ]);
  expect(saved.filter((a) => a.type === NETWORK)).toEqual([
    { type: NETWORK, networkId: net, kind: 'updated', ...cause },
  ]);

  // A delete stamped before the save (it lost the race): nothing deleted, the network announced unchanged.
  const stale = event(EventType.NetworkDeleted, {
    networkId: net,
    writerId: 'late',
    seq: 1,
    stamp: formatStamp({ wallTime: 1_700_000_000_000, logical: 0, writerId: 'late' }),
  });
  expect(await push(stale, 1)).toEqual([
    { type: NETWORK, networkId: net, kind: 'deleted', causeId: stale.id, writerId: 'late', unchanged: true },
  ]);

  const remove = event(EventType.NetworkDeleted, { networkId: net, ...origin() });
  const removeCause = { causeId: remove.id, writerId: 'alice' };
  const removed = await push(remove, 3);
  expect(
    removed.filter((a) => a.type === GROUP).sort((a, b) => String(a.groupId).localeCompare(String(b.groupId))),
  ).toEqual([
    { type: GROUP, networkId: net, groupId: 'child', kind: 'deleted', ...removeCause },
    { type: GROUP, networkId: net, groupId: 'root', kind: 'deleted', ...removeCause },
  ]);
  expect(removed.filter((a) => a.type === NETWORK)).toEqual([
    { type: NETWORK, networkId: net, kind: 'deleted', ...removeCause },
  ]);
});
