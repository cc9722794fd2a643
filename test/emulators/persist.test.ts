/**
 * The persist function in process, against the real emulators: the official Pub/Sub emulator
 * holds the pending buffer (the topology's pull subscription), the Storage emulator holds the
 * state (GcsStorage), the dead letters and the group records whose writes are counted. The
 * handler is served over HTTP by the Functions Framework and called with fetch, the way Cloud
 * Tasks calls it. Faults are injected by thin wrappers around the real PendingWrites and
 * GcsStorage; nothing of Pub/Sub or Storage is mocked.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Message, PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { CloudTasksClient } from '@google-cloud/tasks';
import { DeadLetterStore } from 'super-spine/mesh';
import { ChangePublisher } from '../../shared/mesh/change-publisher';
import { ContentStore } from '../../shared/mesh/content-store';
import {
  createEvent,
  EventType,
  growArray,
  growSet,
  InvalidArgumentError,
  type AnySpineEvent,
  type BlendMode,
  type GrowArray,
  type GrowSet,
} from 'super-spine';
import { formatStamp, type Stamp } from '../../shared/hlc';
import { fromPubSubMessage, toPubSubMessage } from '../../shared/events';
import { GcsStorage } from 'super-spine/gcs';
import { idToKey } from '../../shared/ids';
import { eventually } from 'super-spine/testing';
import { createPersistHandler, parseFlushRequest, type PersistSummary } from '../../functions/persist/handler';
import { createPubSubClient, createStorageClient, createSubscriberClient } from '../../shared/mesh/clients';
import { PendingWrites, WINDOW_ATTRIBUTE, type PendingMessage } from '../../functions/pending-writes';
import { provisionTopology } from '../../shared/provision';
import type { PersistOn } from '../../shared/settings';
import { defineTopology, type Topology } from '../../shared/topology';
import { createMemoryLogger, useEmulators } from '../helpers/emulators';

process.env.METADATA_SERVER_DETECTION ??= 'none';
jest.setTimeout(120_000);

const emulators = useEmulators();

/** Long windows, so the windows these tests use are never overdue for the periodic sweep. */
const WINDOW_MS = 60_000;
const DUMMY_ENDPOINT = 'http://127.0.0.1:9/';
const RETRY_HEADER = 'X-CloudTasks-TaskRetryCount';

let pubsub: PubSub;
let storage: Storage;
let tasks: CloudTasksClient;
let suiteId: string;
let bucket: string;
let fixtureCount = 0;

beforeAll(async () => {
  const { projectId } = emulators;
  suiteId = randomUUID().slice(0, 6);
  bucket = `persist-test-${suiteId}`;
  pubsub = createPubSubClient({ projectId, pubsubEmulatorHost: emulators.pubsub.address });
  storage = createStorageClient({ projectId, storageEmulatorHost: emulators.storage.url });
  tasks = new CloudTasksClient(emulators.tasks.clientOptions());
});

afterAll(async () => {
  await tasks?.close();
  await pubsub?.close();
});

// ---- the fixture: one topology (own topics and subscriptions), one handler served over HTTP ----

interface Calls {
  pulled: PendingMessage[];
  acked: string[];
  released: string[];
  /** Ack ids whose release a simulated crash swallowed: they stay leased until their deadline. */
  lost: string[];
}

interface Faults {
  /** The next n acknowledgements throw (after the state write: a crash before the ack). */
  ackThrows: number;
  /** The next n releases are lost, as when the process dies instead of handing messages back. */
  releasesLost: number;
  /** The next n state writes throw (a crash before the state write). */
  stateThrows: number;
  /** The next pull keeps what it leased this long before the flush goes on (a slow flush). */
  holdNextPullMs: number;
}

interface Fixture {
  id: string;
  topology: Topology;
  url: string;
  state: GcsStorage;
  statePrefix: string;
  /** What the handler uses: the real PendingWrites, its pull/ack/release recorded and faultable. */
  pending: PendingWrites;
  /** Another real PendingWrites on the same subscription, for the test to look without being recorded. */
  probe: PendingWrites;
  /** The real release, bypassing the fault wrapper: what a lease running out amounts to. */
  releaseDirectly(ackIds: string[]): Promise<void>;
  calls: Calls;
  faults: Faults;
  deadLetters: DeadLetterStore;
  changes: ChangePublisher;
  /** Persistence mode of a network as the handler sees it; `interval` unless set here. */
  modes: Map<string, PersistOn>;
  logger: ReturnType<typeof createMemoryLogger>;
  post(
    body: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: PersistSummary & Record<string, unknown> }>;
  close(): Promise<void>;
}

const open: Fixture[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

async function createFixture(): Promise<Fixture> {
  const { projectId } = emulators;
  const id = `p${suiteId}${++fixtureCount}`;
  const topology = defineTopology({ projectId, prefix: `${id}-`, bucket });
  await provisionTopology(
    topology,
    { pubsub, storage, tasks },
    { endpoints: { materialize: DUMMY_ENDPOINT, deadletter: DUMMY_ENDPOINT }, logger: createMemoryLogger() },
  );
  const subscriptionPath = `projects/${projectId}/subscriptions/${topology.subscriptions.pending.name}`;
  const pubsubSettings = { projectId, pubsubEmulatorHost: emulators.pubsub.address };
  const pending = new PendingWrites(
    pubsub,
    topology.topics.pendingWrites.name,
    createSubscriberClient(pubsubSettings),
    subscriptionPath,
  );
  const probe = new PendingWrites(
    pubsub,
    topology.topics.pendingWrites.name,
    createSubscriberClient(pubsubSettings),
    subscriptionPath,
  );

  const calls: Calls = { pulled: [], acked: [], released: [], lost: [] };
  const faults: Faults = { ackThrows: 0, releasesLost: 0, stateThrows: 0, holdNextPullMs: 0 };
  const realPull = pending.pull.bind(pending);
  const realAck = pending.ack.bind(pending);
  const realRelease = pending.release.bind(pending);
  pending.pull = async (max?: number) => {
    const got = await realPull(max);
    calls.pulled.push(...got);
    if (faults.holdNextPullMs > 0) {
      const hold = faults.holdNextPullMs;
      faults.holdNextPullMs = 0;
      await new Promise((resolve) => setTimeout(resolve, hold));
    }
    return got;
  };
  pending.ack = async (ackIds: string[]) => {
    if (faults.ackThrows > 0) {
      faults.ackThrows -= 1;
      throw new Error('simulated crash: the state is written, the acknowledgement never sent');
    }
    await realAck(ackIds);
    calls.acked.push(...ackIds);
  };
  pending.release = async (ackIds: string[]) => {
    if (faults.releasesLost > 0) {
      faults.releasesLost -= 1;
      calls.lost.push(...ackIds);
      return;
    }
    await realRelease(ackIds);
    calls.released.push(...ackIds);
  };

  const statePrefix = `${id}-state/`;
  const logger = createMemoryLogger();
  const state = new GcsStorage({ bucket, prefix: statePrefix, storage, writerId: `persist-${id}`, logger });
  await state.initialize();
  const realBatch = state.applyContactWriteBatch.bind(state);
  state.applyContactWriteBatch = async (...args: Parameters<GcsStorage['applyContactWriteBatch']>) => {
    if (faults.stateThrows > 0) {
      faults.stateThrows -= 1;
      throw new Error('simulated crash before the state write');
    }
    return realBatch(...args);
  };

  const changes = new ChangePublisher(pubsub, topology.topics.groupChanges.name, '//superspine/functions/persist');
  const deadLetters = new DeadLetterStore(storage, bucket, `${id}-dead-letters/`);
  const content = new ContentStore(storage, bucket, `${id}-content/`);
  const modes = new Map<string, PersistOn>();
  const handler = createPersistHandler({
    batchWindowMs: WINDOW_MS,
    persistModeFor: (networkId) => modes.get(networkId) ?? 'interval',
    state,
    pending,
    changes,
    deadLetters,
    content,
    logger,
  });
  const target = `persist-under-test-${id}`;
  functions.http(target, handler);
  const server: Server = getTestServer(target);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const fixture: Fixture = {
    id,
    topology,
    url,
    state,
    statePrefix,
    pending,
    probe,
    releaseDirectly: realRelease,
    calls,
    faults,
    deadLetters,
    changes,
    modes,
    logger,
    async post(body, headers = {}) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : {} };
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await changes.close();
      await pending.close();
      await probe.close();
      await state.close();
    },
  };
  open.push(fixture);
  return fixture;
}

// ---- writes, the way materialize forwards them ----------------------------------------------

/** A writer whose stamps and sequence numbers increase, like a SpineStorage client's. */
class Writer {
  seq = 0;
  constructor(
    readonly writerId: string,
    private wallTime = 1_800_000_000_000,
    private logical = 0,
  ) {}

  /** The next stamp; `advanceMs` 0 keeps the wall time and bumps the logical counter. */
  next(advanceMs = 1): { writerId: string; seq: number; stamp: Stamp } {
    if (advanceMs > 0) {
      this.wallTime += advanceMs;
      this.logical = 0;
    } else {
      this.logical += 1;
    }
    this.seq += 1;
    return {
      writerId: this.writerId,
      seq: this.seq,
      stamp: formatStamp({ wallTime: this.wallTime, logical: this.logical, writerId: this.writerId }),
    };
  }
}

interface WriteSpec {
  networkId: string;
  groupId: string;
  contactId: string;
  content: unknown;
  blendMode?: BlendMode;
  origin: { writerId: string; seq: number; stamp: Stamp };
}

function contactWritten(spec: WriteSpec): AnySpineEvent {
  return createEvent(
    EventType.ContactWritten,
    {
      networkId: spec.networkId,
      groupId: spec.groupId,
      contactId: spec.contactId,
      content: spec.content,
      ...(spec.blendMode ? { blendMode: spec.blendMode } : {}),
      ...spec.origin,
    },
    { source: '//test/spine-storage' },
  );
}

/** Forwards an event to the pending buffer exactly as materialize does (`pending.add(message, window)`). */
async function forward(fx: Fixture, event: AnySpineEvent, window?: number): Promise<void> {
  const message = toPubSubMessage(event);
  await fx.pending.add({ data: message.data.toString('base64'), attributes: { ...message.attributes } }, window);
}

async function publish(fx: Fixture, spec: WriteSpec, window?: number): Promise<AnySpineEvent> {
  const event = contactWritten(spec);
  await forward(fx, event, window);
  return event;
}

/** What is pending and not leased right now; left pending (as a flush defers what it does not take). */
async function lookPending(fx: Fixture): Promise<PendingMessage[]> {
  const got = await fx.probe.pull();
  await fx.probe.defer(got);
  return got;
}

/**
 * Posts a flush until it has applied `events` writes in all: writes handed back (nacked) are
 * redelivered after the subscription's retry backoff (1 s, then longer), as Cloud Tasks retries
 * a flush. Every answer must be a 200, or a 503 that found nothing; returns them.
 */
async function flushUntil(fx: Fixture, body: unknown, events: number, headers: Record<string, string> = {}) {
  const answers: Array<{ status: number; body: PersistSummary & Record<string, unknown> }> = [];
  let applied = 0;
  await eventually(
    async () => {
      if (applied < events) {
        const answer = await fx.post(body, headers);
        answers.push(answer);
        applied += answer.body.events ?? 0;
        expect(answer.status === 200 || (answer.status === 503 && answer.body.events === 0)).toBe(true);
      }
      expect(applied).toBe(events);
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  return answers;
}

function eventIdsOf(messages: PendingMessage[]): string[] {
  return messages.map((m) => m.attributes['ce-id']!).sort();
}

/** Committed writes per object under a network of the fixture's state since `before`, by name relative to the network's groups. */
function groupObjectWrites(fx: Fixture, networkId: string, before: Record<string, number>): Record<string, number> {
  const base = `${bucket}/${fx.statePrefix}networks/${idToKey(networkId)}/groups/`;
  const out: Record<string, number> = {};
  for (const [key, count] of Object.entries(emulators.storage.stats().writesByObject)) {
    const delta = count - (before[key] ?? 0);
    if (delta > 0 && key.startsWith(base)) out[key.slice(base.length)] = delta;
  }
  return out;
}

const recordOf = (groupId: string) => `${idToKey(groupId)}/group.json`;
const writesNow = () => ({ ...emulators.storage.stats().writesByObject });
const currentWindow = () => Math.floor(Date.now() / WINDOW_MS);
const uniqueNetwork = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

async function contentOf(fx: Fixture, networkId: string, groupId: string, contactId: string): Promise<unknown> {
  return fx.state.loadContactContent(networkId, groupId, contactId);
}

async function logItems(fx: Fixture, networkId: string, groupId: string, contactId = 'log'): Promise<number[]> {
  const content = (await contentOf(fx, networkId, groupId, contactId)) as GrowArray<number> | null;
  if (content === null) return [];
  expect(content._tag).toBe('GrowArray');
  return content.items;
}

// ---- 1. scope of a flush -----------------------------------------------------------------------

describe('the scope of a flush', () => {
  it('applies writes up to the requested window only; later windows and unwindowed writes wait for their own flush', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('scope');
    const other = uniqueNetwork('other');
    const writer = new Writer('w-scope');
    const n = currentWindow();
    const write = (contactId: string, window: number | undefined, networkId = net) =>
      publish(fx, { networkId, groupId: 'g', contactId, content: contactId, origin: writer.next() }, window);
    const earlier = await write('earlier', n - 1);
    const current = await write('current', n);
    const later = await write('later', n + 1);
    const unwindowed = await write('unwindowed', undefined);
    const otherNetwork = await write('other-network', undefined, other);

    // The window's flush (the body BatchScheduler sends): windows n-1 and n only.
    const first = await fx.post({ networkId: net, groupId: 'g', window: n });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ groups: 1, events: 2, deadLetters: 0, failed: [] });
    expect(await contentOf(fx, net, 'g', 'earlier')).toBe('earlier');
    expect(await contentOf(fx, net, 'g', 'current')).toBe('current');
    expect(await contentOf(fx, net, 'g', 'later')).toBeNull();
    expect(await contentOf(fx, net, 'g', 'unwindowed')).toBeNull();
    // What it did not take is pending again at once, not leased, and not applied.
    expect(eventIdsOf(await lookPending(fx))).toEqual([later.id, unwindowed.id, otherNetwork.id].sort());
    const acked = new Set(fx.calls.acked);
    const pulledIds = (event: AnySpineEvent) =>
      fx.calls.pulled.filter((m) => m.attributes['ce-id'] === event.id).map((m) => m.ackId);
    expect(pulledIds(earlier).every((ackId) => acked.has(ackId))).toBe(true);
    expect(pulledIds(later).some((ackId) => acked.has(ackId))).toBe(false);
    expect(pulledIds(later).length).toBeGreaterThan(0);

    // An explicit flush of another network takes that network's writes only. What earlier flushes
    // (and the look above) left pending is visible to the very next flush: no retry needed.
    const otherFlush = await fx.post({ networkId: other, all: true });
    expect(otherFlush.status).toBe(200);
    expect(otherFlush.body).toMatchObject({ groups: 1, events: 1 });
    expect(await contentOf(fx, other, 'g', 'other-network')).toBe('other-network');
    expect(await contentOf(fx, net, 'g', 'unwindowed')).toBeNull();
    expect(await contentOf(fx, net, 'g', 'later')).toBeNull();

    // The next window's flush takes the later write, still not the unwindowed one.
    const next = await fx.post({ networkId: net, groupId: 'g', window: n + 1 });
    expect(next.status).toBe(200);
    expect(next.body).toMatchObject({ groups: 1, events: 1 });
    expect(await contentOf(fx, net, 'g', 'later')).toBe('later');
    expect(await contentOf(fx, net, 'g', 'unwindowed')).toBeNull();

    // The periodic sweep (the interval job's body) takes unwindowed writes (of interval networks).
    const sweep = await fx.post({ all: true });
    expect(sweep.status).toBe(200);
    expect(sweep.body).toMatchObject({ groups: 1, events: 1 });
    expect(await contentOf(fx, net, 'g', 'unwindowed')).toBe('unwindowed');
    // Nothing was applied twice or left over: each write was acknowledged once, by the flush that applied it.
    const ackedEvents = fx.calls.pulled
      .filter((m) => fx.calls.acked.includes(m.ackId))
      .map((m) => m.attributes['ce-id']);
    expect(ackedEvents.sort()).toEqual([earlier.id, current.id, later.id, unwindowed.id, otherNetwork.id].sort());
    expect(await lookPending(fx)).toEqual([]);
  });

  it('leaves current-window writes to their window even in a sweep, and takes a window that is long overdue', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('sweep');
    const writer = new Writer('w-sweep');
    const n = currentWindow();
    await publish(fx, { networkId: net, groupId: 'g', contactId: 'open', content: 1, origin: writer.next() }, n);
    await publish(fx, { networkId: net, groupId: 'g', contactId: 'overdue', content: 2, origin: writer.next() }, n - 5);
    const sweep = await fx.post({ all: true });
    expect(sweep.status).toBe(200);
    expect(sweep.body.events).toBe(1);
    expect(await contentOf(fx, net, 'g', 'overdue')).toBe(2);
    expect(await contentOf(fx, net, 'g', 'open')).toBeNull();
    expect(await lookPending(fx)).toHaveLength(1);
  });

  it('sweeps writes of interval networks but leaves those of manual networks to an explicit flush of their network', async () => {
    const fx = await createFixture();
    const interval = uniqueNetwork('interval');
    const manual = uniqueNetwork('manual');
    fx.modes.set(interval, 'interval');
    fx.modes.set(manual, 'manual');
    const writer = new Writer('w-modes');
    await publish(fx, { networkId: interval, groupId: 'g', contactId: 'c', content: 'swept', origin: writer.next() });
    await publish(fx, {
      networkId: manual,
      groupId: 'g',
      contactId: 'c',
      content: 'on request',
      origin: writer.next(),
    });
    const sweep = await fx.post({ all: true });
    expect(sweep.status).toBe(200);
    expect(sweep.body).toMatchObject({ groups: 1, events: 1 });
    expect(await contentOf(fx, interval, 'g', 'c')).toBe('swept');
    expect(await contentOf(fx, manual, 'g', 'c')).toBeNull();
    // A later sweep that sees it still leaves it; the network's own flush (what `flush()` books) takes it.
    const sightings = () => fx.calls.pulled.filter((m) => m.attributes.networkId === manual).length;
    expect(sightings()).toBe(1);
    const again = await fx.post({ all: true });
    expect(again.status).toBe(200);
    expect(again.body.events).toBe(0);
    expect(sightings()).toBe(2);
    expect(await contentOf(fx, manual, 'g', 'c')).toBeNull();
    const requested = await fx.post({ networkId: manual, all: true });
    expect(requested.body).toMatchObject({ groups: 1, events: 1 });
    expect(await contentOf(fx, manual, 'g', 'c')).toBe('on request');
  });

  it('flushes everything on request: writes of future windows and of manual networks (the last flush before a local mesh stops)', async () => {
    const fx = await createFixture();
    const batched = uniqueNetwork('everything-batch');
    const manual = uniqueNetwork('everything-manual');
    fx.modes.set(manual, 'manual');
    const writer = new Writer('w-everything');
    await publish(
      fx,
      { networkId: batched, groupId: 'g', contactId: 'c', content: 'future window', origin: writer.next() },
      currentWindow() + 100,
    );
    await publish(fx, { networkId: manual, groupId: 'g', contactId: 'c', content: 'manual', origin: writer.next() });
    const sweep = await fx.post({ all: true });
    expect(sweep.body).toMatchObject({ events: 0 });
    expect(await fx.post({ everything: true, networkId: manual })).toMatchObject({ status: 400 });
    expect(await fx.post({ everything: 'yes' })).toMatchObject({ status: 400 });
    const everything = await fx.post({ everything: true });
    expect(everything.status).toBe(200);
    expect(everything.body).toMatchObject({ groups: 2, events: 2, failed: [] });
    expect(await contentOf(fx, batched, 'g', 'c')).toBe('future window');
    expect(await contentOf(fx, manual, 'g', 'c')).toBe('manual');
  });

  it('runs flushes one at a time: a window flush arriving during a slow sweep is not split or starved', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('concurrent');
    const writer = new Writer('w-concurrent');
    const n = currentWindow();
    const groups = ['a', 'b', 'c'];
    for (let i = 0; i < 30; i++)
      await publish(
        fx,
        { networkId: net, groupId: groups[i % 3]!, contactId: `c${i}`, content: i, origin: writer.next() },
        n,
      );
    const before = writesNow();
    // The sweep leases everything it pulls and holds it a while before deferring the window's writes.
    fx.faults.holdNextPullMs = 500;
    const sweep = fx.post({ all: true });
    await eventually(() => expect(fx.calls.pulled).toHaveLength(30));
    const windowFlush = await fx.post({ networkId: net, groupId: 'a', window: n });
    expect(windowFlush.status).toBe(200);
    expect(windowFlush.body).toMatchObject({ groups: 3, events: 30, failed: [] });
    expect((await sweep).body).toMatchObject({ events: 0 });
    expect(groupObjectWrites(fx, net, before)).toEqual(Object.fromEntries(groups.map((g) => [recordOf(g), 1])));
    expect(await lookPending(fx)).toEqual([]);
  });

  it('keeps a deferred write pending and visible however many flushes pass it by: no dead letter, no backoff', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('patient');
    const writer = new Writer('w-patient');
    const n = currentWindow();
    // Watches where the pending subscription's dead-letter policy sends what it gives up on.
    const [deadLetterWatch] = await pubsub
      .topic(fx.topology.topics.deadLetters.name)
      .createSubscription(`${fx.id}-dl-watch`);
    const waiting = await publish(fx, {
      networkId: net,
      groupId: 'manual',
      contactId: 'waiting',
      content: 'kept',
      origin: writer.next(),
    });
    const limit = fx.topology.subscriptions.pending.deadLetterPolicy!.maxDeliveryAttempts;
    const sightings = () => fx.calls.pulled.filter((m) => m.attributes['ce-id'] === waiting.id);
    // Every window's flush (one per group that has writes in it) drains the buffer and passes this
    // write by; each one sees it again at once (no backoff hides it), and Pub/Sub never counts up
    // to its dead-letter limit.
    for (let flush = 0; flush < limit + 5; flush++) {
      await publish(
        fx,
        { networkId: net, groupId: `busy-${flush}`, contactId: 'c', content: flush, origin: writer.next() },
        n,
      );
      const result = await fx.post({ networkId: net, groupId: `busy-${flush}`, window: n });
      expect(result.status).toBe(200);
      expect(result.body).toMatchObject({ groups: 1, events: 1 });
      expect(sightings()).toHaveLength(flush + 1);
    }
    expect(await contentOf(fx, net, `busy-${limit + 4}`, 'c')).toBe(limit + 4);
    expect(sightings().map((m) => m.deliveryAttempt)).toEqual(sightings().map(() => 1));
    const sweep = await fx.post({ all: true });
    expect(sweep.body).toMatchObject({ groups: 1, events: 1 });
    expect(await contentOf(fx, net, 'manual', 'waiting')).toBe('kept');
    const watcher = createSubscriberClient({
      projectId: emulators.projectId,
      pubsubEmulatorHost: emulators.pubsub.address,
    });
    try {
      const [dead] = await watcher.pull({
        subscription: deadLetterWatch.name,
        maxMessages: 10,
        returnImmediately: true,
      });
      expect(dead.receivedMessages ?? []).toHaveLength(0);
    } finally {
      await watcher.close();
      await deadLetterWatch.delete();
    }
    expect(await lookPending(fx)).toEqual([]);
  });
});

// ---- 2. one state write per group, in clock order ---------------------------------------------

describe('applying a batch', () => {
  it('applies 300 writes to 3 groups in clock order with one write of each group record; the state equals a model', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('model');
    const writers = [new Writer('w-a'), new Writer('w-b'), new Writer('w-c')];
    const groups = ['g0', 'g1', 'teams/g2'];
    const specs: WriteSpec[] = [];
    // Several writers, some stamps equal in wall time and logical count (ties go to the writer id).
    for (let i = 0; i < 300; i++) {
      const writer = writers[Math.floor(i / 9) % 3]!;
      const origin = writer.next(i % 5 === 0 ? 0 : 1 + (i % 4));
      const groupId = groups[Math.floor(i / 3) % 3]!;
      if (i % 3 === 0)
        specs.push({
          networkId: net,
          groupId,
          contactId: `last-${i % 4}`,
          content: `${origin.writerId}#${origin.seq}`,
          origin,
        });
      else if (i % 3 === 1)
        specs.push({
          networkId: net,
          groupId,
          contactId: 'tags',
          content: growSet([`t${i}`, `shared-${i % 4}`]),
          blendMode: 'merge',
          origin,
        });
      else
        specs.push({ networkId: net, groupId, contactId: 'log', content: growArray([i]), blendMode: 'merge', origin });
    }
    // The model: accept-last keeps the newest stamp, grow sets take the union, grow arrays append in clock order.
    const byStamp = [...specs].sort((a, b) => (a.origin.stamp < b.origin.stamp ? -1 : 1));
    const model = new Map<string, unknown>();
    for (const spec of byStamp) {
      const key = `${spec.groupId}|${spec.contactId}`;
      if (spec.contactId.startsWith('last-')) model.set(key, spec.content);
      else if (spec.contactId === 'tags')
        model.set(key, [...((model.get(key) as string[]) ?? []), ...(spec.content as GrowSet<string>).values]);
      else model.set(key, [...((model.get(key) as number[]) ?? []), ...(spec.content as GrowArray<number>).items]);
    }
    // Arrival order is not clock order: a fixed pseudo-random shuffle.
    const arrival = [...specs];
    let seed = 12345;
    for (let i = arrival.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const j = seed % (i + 1);
      [arrival[i], arrival[j]] = [arrival[j]!, arrival[i]!];
    }
    for (const groupId of groups) {
      const logOf = (list: WriteSpec[]) =>
        list.filter((w) => w.groupId === groupId && w.contactId === 'log').map((w) => w.origin.stamp);
      expect(logOf(arrival)).not.toEqual(logOf(byStamp));
      expect(new Set(logOf(byStamp).map((stamp) => stamp.split(':')[2])).size).toBe(3);
    }
    const n = currentWindow();
    await Promise.all(arrival.map((spec) => publish(fx, spec, n)));

    const before = writesNow();
    const result = await fx.post({ networkId: net, groupId: 'g0', window: n });
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ groups: 3, events: 300, deadLetters: 0, failed: [] });
    // One write per group record, and no per-contact objects.
    expect(groupObjectWrites(fx, net, before)).toEqual(Object.fromEntries(groups.map((g) => [recordOf(g), 1])));

    for (const groupId of groups) {
      const state = await fx.state.loadGroupState(net, groupId);
      expect(state).not.toBeNull();
      const expectedContacts = [...model.keys()]
        .filter((key) => key.startsWith(`${groupId}|`))
        .map((key) => key.split('|')[1]!);
      expect([...state!.contacts.keys()].sort()).toEqual(expectedContacts.sort());
      for (const contactId of expectedContacts) {
        const expected = model.get(`${groupId}|${contactId}`);
        const content = state!.contacts.get(contactId)!.content;
        if (contactId.startsWith('last-')) expect(content).toBe(expected);
        else if (contactId === 'tags')
          expect([...(content as GrowSet<string>).values].sort()).toEqual([...new Set(expected as string[])].sort());
        else expect((content as GrowArray<number>).items).toEqual(expected);
      }
    }
    expect(fx.calls.acked).toHaveLength(300);
    expect(await lookPending(fx)).toEqual([]);
  });
});

// ---- 3 and 4. crashes --------------------------------------------------------------------------

describe('crashes', () => {
  async function publishAppends(
    fx: Fixture,
    net: string,
    groupId: string,
    count: number,
    window: number,
    writer = new Writer(`w-${groupId}`),
  ) {
    const events: AnySpineEvent[] = [];
    for (let i = 0; i < count; i++)
      events.push(
        contactWritten({
          networkId: net,
          groupId,
          contactId: 'log',
          content: growArray([i]),
          blendMode: 'merge',
          origin: writer.next(),
        }),
      );
    await Promise.all(events.map((event) => forward(fx, event, window)));
    return events;
  }

  it('after the state write but before the ack: 500, the writes come back, and the retry applies nothing twice', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('ackcrash');
    const n = currentWindow();
    await publishAppends(fx, net, 'g', 60, n);
    fx.faults.ackThrows = 1;

    const crashed = await fx.post({ networkId: net, groupId: 'g', window: n });
    expect(crashed.status).toBe(500);
    expect(crashed.body.failed).toEqual([{ path: `${net}/g`, error: expect.stringContaining('simulated crash') }]);
    // The state write happened before the crash.
    expect(await logItems(fx, net, 'g')).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(fx.calls.acked).toEqual([]);

    // The failed attempt handed its messages back (not leased: pending again after the retry backoff).
    expect(fx.calls.released).toHaveLength(60);
    await eventually(async () => expect(await lookPending(fx)).toHaveLength(60));
    const before = writesNow();
    const retries = await flushUntil(fx, { networkId: net, groupId: 'g', window: n }, 60, { [RETRY_HEADER]: '1' });
    expect(retries.filter((r) => r.status === 200).every((r) => r.body.failed.length === 0)).toBe(true);
    // Every write was a duplicate: the group record is not written again, and no item is doubled.
    expect(groupObjectWrites(fx, net, before)).toEqual({});
    expect(await logItems(fx, net, 'g')).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(fx.calls.acked).toHaveLength(60);
    expect(await lookPending(fx)).toEqual([]);
  });

  it('a process that dies before the ack: the writes stay leased (a retry answers 503), then come back and are applied once', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('diecrash');
    const n = currentWindow();
    await publishAppends(fx, net, 'a', 40, n);
    await publishAppends(fx, net, 'b', 40, n);
    // The first group's ack fails and the process dies: its release never happens either.
    fx.faults.ackThrows = 1;
    fx.faults.releasesLost = 1;

    const crashed = await fx.post({ networkId: net, groupId: 'a', window: n });
    expect(crashed.status).toBe(500);
    expect(crashed.body.failed).toHaveLength(1);
    const crashedPath = crashed.body.failed[0]!.path;
    const crashedGroup = crashedPath.slice(net.length + 1);
    const otherGroup = crashedGroup === 'a' ? 'b' : 'a';
    expect(fx.calls.lost).toHaveLength(40);
    expect(fx.calls.acked).toHaveLength(40);
    for (const groupId of ['a', 'b']) expect(await logItems(fx, net, groupId)).toHaveLength(40);

    // Cloud Tasks retries while the dead attempt's lease still holds the window's writes.
    const early = await fx.post({ networkId: net, groupId: 'a', window: n }, { [RETRY_HEADER]: '1' });
    expect(early.status).toBe(503);
    expect(early.body.events).toBe(0);

    // The lease runs out (released here instead of waiting 60 s): the next retry finds them.
    await fx.releaseDirectly(fx.calls.lost);
    const before = writesNow();
    await flushUntil(fx, { networkId: net, groupId: 'a', window: n }, 40, { [RETRY_HEADER]: '2' });
    expect(groupObjectWrites(fx, net, before)).toEqual({});
    for (const groupId of [crashedGroup, otherGroup])
      expect(await logItems(fx, net, groupId)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(fx.calls.acked).toHaveLength(80);
    expect(await lookPending(fx)).toEqual([]);
  });

  it('before the state write: 500, that group acknowledges nothing, and a retry applies everything once', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('statecrash');
    const n = currentWindow();
    const events = [...(await publishAppends(fx, net, 'x', 50, n)), ...(await publishAppends(fx, net, 'y', 50, n))];
    fx.faults.stateThrows = 1;

    const before = writesNow();
    const crashed = await fx.post({ networkId: net, groupId: 'x', window: n });
    expect(crashed.status).toBe(500);
    expect(crashed.body).toMatchObject({ groups: 2, events: 100 });
    expect(crashed.body.failed).toHaveLength(1);
    const failedGroup = crashed.body.failed[0]!.path.slice(net.length + 1);
    const okGroup = failedGroup === 'x' ? 'y' : 'x';
    // Only the other group was written and acknowledged.
    expect(groupObjectWrites(fx, net, before)).toEqual({ [recordOf(okGroup)]: 1 });
    expect(await logItems(fx, net, failedGroup)).toEqual([]);
    expect(await logItems(fx, net, okGroup)).toHaveLength(50);
    expect(fx.calls.acked).toHaveLength(50);
    const failedIds = new Set(
      events.filter((e) => (e.data as { groupId: string }).groupId === failedGroup).map((e) => e.id),
    );
    const ackedEventIds = fx.calls.pulled
      .filter((m) => fx.calls.acked.includes(m.ackId))
      .map((m) => m.attributes['ce-id']);
    expect(ackedEventIds.some((id) => failedIds.has(id!))).toBe(false);
    await eventually(async () => expect(new Set(eventIdsOf(await lookPending(fx)))).toEqual(failedIds));

    const retryBefore = writesNow();
    const retries = await flushUntil(fx, { networkId: net, groupId: 'x', window: n }, 50, { [RETRY_HEADER]: '1' });
    const applied = retries.filter((r) => r.body.events > 0);
    expect(applied.every((r) => r.status === 200 && r.body.failed.length === 0)).toBe(true);
    // One write of the group record per flush that found its writes (one, unless redelivery split them).
    expect(groupObjectWrites(fx, net, retryBefore)).toEqual({ [recordOf(failedGroup)]: applied.length });
    for (const groupId of ['x', 'y'])
      expect(await logItems(fx, net, groupId)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(await lookPending(fx)).toEqual([]);
  });
});

// ---- 5. answers to Cloud Tasks -----------------------------------------------------------------

describe('answers to Cloud Tasks retries', () => {
  it('answers 503 to a retried window flush that finds nothing, 200 to a first attempt or a retry past the limit', async () => {
    const fx = await createFixture();
    const n = currentWindow();
    const windowFlush = (retry?: string) =>
      fx.post({ networkId: 'net', groupId: 'g', window: n }, retry === undefined ? {} : { [RETRY_HEADER]: retry });
    expect((await windowFlush()).status).toBe(200);
    expect((await windowFlush('0')).status).toBe(200);
    const retried = await windowFlush('1');
    expect(retried.status).toBe(503);
    expect(retried.body).toMatchObject({ events: 0, retryLater: expect.any(String) });
    expect((await windowFlush('10')).status).toBe(503);
    expect((await windowFlush('11')).status).toBe(200);
    expect((await windowFlush('57')).status).toBe(200);
    // Not a window flush: nothing to wait for.
    expect((await fx.post({ all: true }, { [RETRY_HEADER]: '3' })).status).toBe(200);
    expect((await fx.post({ networkId: 'net', all: true }, { [RETRY_HEADER]: '3' })).status).toBe(200);

    // A retry that finds writes of a later window only (deferred) still has nothing of its own: 503.
    const net = uniqueNetwork('later');
    await publish(
      fx,
      { networkId: net, groupId: 'g', contactId: 'c', content: 1, origin: new Writer('w-later').next() },
      n + 1,
    );
    expect((await windowFlush('2')).status).toBe(503);
    // And a retry that finds its window's writes applies them with 200.
    await publish(
      fx,
      { networkId: net, groupId: 'g', contactId: 'd', content: 2, origin: new Writer('w-now').next() },
      n,
    );
    await eventually(async () => {
      const found = await windowFlush('2');
      expect(found.status).toBe(200);
      expect(found.body.events).toBe(1);
    });
    expect(await contentOf(fx, net, 'g', 'd')).toBe(2);
  });
});

// ---- 6. dead letters ---------------------------------------------------------------------------

describe('unapplicable messages', () => {
  it('files garbage and non-write events as dead letters and acknowledges them; the valid writes beside them are applied', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('garbage');
    const n = currentWindow();
    const writer = new Writer('w-garbage');
    const garbage = Buffer.from('this is not an encoded event \u0000\u00ff').toString('base64');
    await fx.pending.add(
      { data: garbage, attributes: { networkId: net, path: `${net}/g`, type: EventType.ContactWritten } },
      n,
    );
    const notAWrite = createEvent(
      EventType.GroupDeleted,
      { networkId: net, groupId: 'g', ...writer.next() },
      { source: '//test' },
    );
    await forward(fx, notAWrite, n);
    for (let i = 0; i < 5; i++)
      await publish(fx, { networkId: net, groupId: 'g', contactId: `c${i}`, content: i, origin: writer.next() }, n);

    const result = await fx.post({ networkId: net, groupId: 'g', window: n });
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ groups: 1, events: 7, deadLetters: 2, failed: [] });
    for (let i = 0; i < 5; i++) expect(await contentOf(fx, net, 'g', `c${i}`)).toBe(i);

    const letters = await fx.deadLetters.list();
    expect(letters).toHaveLength(2);
    const garbageLetter = letters.find((l) => l.data === garbage);
    expect(garbageLetter).toMatchObject({
      reason: expect.stringContaining('not an encoded event'),
      attributes: { networkId: net, [WINDOW_ATTRIBUTE]: String(n) },
    });
    const garbageMessage = fx.calls.pulled.find((m) => m.data.toString('base64') === garbage)!;
    expect(garbageLetter!.id).toBe(garbageMessage.messageId);
    expect(letters.find((l) => l.attributes['ce-id'] === notAWrite.id)?.reason).toContain('is not a batched write');
    // Acknowledged (not merely leased): each dead message's ack id went through a real acknowledge.
    const deadAckIds = fx.calls.pulled
      .filter((m) => m.data.toString('base64') === garbage || m.attributes['ce-id'] === notAWrite.id)
      .map((m) => m.ackId);
    expect(deadAckIds).toHaveLength(2);
    for (const ackId of deadAckIds) expect(fx.calls.acked).toContain(ackId);
    expect(fx.calls.acked).toHaveLength(7);
    expect(await lookPending(fx)).toEqual([]);
  });
});

// ---- 7. the batch acknowledgement --------------------------------------------------------------

describe('the batch acknowledgement', () => {
  it('announces each flushed group once on the group-changes topic, with batch: "true" and every applied event as a cause', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('acks');
    const n = currentWindow();
    const [watch] = await pubsub
      .topic(fx.topology.topics.groupChanges.name)
      .createSubscription(`${fx.id}-watch`, { enableMessageOrdering: true });
    const received: Message[] = [];
    watch.on('message', (message: Message) => {
      received.push(message);
      message.ack();
    });
    watch.on('error', () => undefined);
    try {
      const writers = [new Writer('alice'), new Writer('bob')];
      const expected = new Map<string, string[]>();
      for (let i = 0; i < 30; i++) {
        const groupId = `g${i % 3}`;
        const writer = writers[i % 2]!;
        const event = await publish(
          fx,
          { networkId: net, groupId, contactId: `c${i % 4}`, content: i, origin: writer.next() },
          n,
        );
        expected.set(groupId, [...(expected.get(groupId) ?? []), `${event.id}|${writer.writerId}`]);
      }
      const result = await fx.post({ networkId: net, groupId: 'g0', window: n });
      expect(result.status).toBe(200);
      expect(result.body.groups).toBe(3);

      // A later flush of a sentinel group: once its acknowledgement is in, the earlier ones had every chance.
      const sentinel = await publish(
        fx,
        { networkId: net, groupId: 'sentinel', contactId: 'c', content: 0, origin: writers[0]!.next() },
        n,
      );
      await eventually(async () => {
        const flush = await fx.post({ networkId: net, groupId: 'sentinel', window: n });
        expect(flush.body.events).toBe(1);
      });
      const decoded = () =>
        received.map((m) => ({
          attributes: m.attributes,
          event: fromPubSubMessage({ data: m.data, attributes: m.attributes }),
        }));
      await eventually(() => expect(decoded().map((d) => d.event.subject)).toContain(`${net}/sentinel`), {
        timeoutMs: 20_000,
      });
      await eventually(() => expect(decoded()).toHaveLength(4), { timeoutMs: 20_000 });

      const announcements = decoded().filter((d) => d.event.subject !== `${net}/sentinel`);
      expect(announcements.map((d) => d.event.subject).sort()).toEqual([`${net}/g0`, `${net}/g1`, `${net}/g2`]);
      for (const { attributes, event } of announcements) {
        expect(attributes.batch).toBe('true');
        expect(event.type).toBe(EventType.GroupChanged);
        const data = event.data as {
          groupId: string;
          kind: string;
          causes?: Array<{ eventId: string; writerId: string }>;
        };
        expect(data.kind).toBe('updated');
        expect(data.causes!.map((c) => `${c.eventId}|${c.writerId}`).sort()).toEqual(
          expected.get(data.groupId)!.sort(),
        );
      }
      const sentinelAck = decoded().find((d) => d.event.subject === `${net}/sentinel`)!;
      expect((sentinelAck.event.data as { causes: unknown }).causes).toEqual([
        { eventId: sentinel.id, writerId: 'alice' },
      ]);
    } finally {
      await watch.close();
      await watch.delete();
    }
  });
});

// ---- 8. flush requests -------------------------------------------------------------------------

describe('flush requests', () => {
  it('parseFlushRequest takes whole windows and valid network ids only', () => {
    expect(parseFlushRequest({ window: 12 })).toEqual({ window: 12 });
    expect(parseFlushRequest({ networkId: 'net', all: true })).toEqual({ networkId: 'net' });
    expect(parseFlushRequest({ all: true })).toEqual({});
    expect(parseFlushRequest(undefined)).toEqual({});
    expect(parseFlushRequest({ networkId: 'net', groupId: 'g', window: 3 })).toEqual({ window: 3 });
    for (const window of [1.5, '12', null, Number.MAX_SAFE_INTEGER + 2, { n: 1 }]) {
      expect(() => parseFlushRequest({ window })).toThrow(InvalidArgumentError);
    }
    for (const networkId of ['a/b', '', '..', 42, 'x'.repeat(1025), 'tab\there']) {
      expect(() => parseFlushRequest({ networkId, all: true })).toThrow(/network|id|must/i);
      // A bad id is refused even without `all`, rather than read as a sweep of every network.
      expect(() => parseFlushRequest({ networkId })).toThrow(/network|id|must/i);
    }
  });

  it('answers 400 over HTTP to a bad window or network id, and touches no pending write', async () => {
    const fx = await createFixture();
    const net = uniqueNetwork('bad');
    const n = currentWindow();
    await publish(fx, { networkId: net, groupId: 'g', contactId: 'c', content: 1, origin: new Writer('w-bad').next() });
    await publish(
      fx,
      { networkId: net, groupId: 'g', contactId: 'd', content: 2, origin: new Writer('w-bad2').next() },
      n,
    );
    for (const body of [
      { window: 1.5 },
      { window: String(n) },
      { networkId: 'a/b', all: true },
      { networkId: '', all: true },
      { networkId: '..' },
    ]) {
      const response = await fx.post(body);
      expect(response.status).toBe(400);
      expect(response.body).toEqual({ error: expect.any(String) });
    }
    expect(fx.calls.pulled).toEqual([]);
    expect(await lookPending(fx)).toHaveLength(2);
    expect(await contentOf(fx, net, 'g', 'c')).toBeNull();
  });
});
