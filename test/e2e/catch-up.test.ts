/**
 * Catch-up subscriptions on the local mesh with its archiver (one mesh for the file):
 * `subscribe(path, callback, { since })` delivers every change after `since` from the archive,
 * then live, each write once across the seam while writers keep writing; `since` errors.
 */
import { randomUUID } from 'node:crypto';
import { eventually } from 'super-spine/testing';
import { ApiKeys, GcsKeyRecords } from '../../gateway/keys';
import { startGateway, type Gateway } from '../../gateway/server';
import { RemoteStorage } from '../../shared/backends/remote';
import { InvalidArgumentError } from '../../shared/errors';
import { EventType } from '../../shared/events/types';
import { SinceOutOfRangeError } from '../../shared/history/catch-up';
import { ArchiveCorruptError } from '../../shared/history/errors';
import { archiveObjectName } from '../../shared/history/layout';
import type { GroupChange, GroupState } from '../../shared/model';
import { createMemoryLogger } from '../helpers/emulators';
import { groupState } from '../helpers/gcs';
import { archiveOf } from '../helpers/archive';
import { useLocalMesh } from '../helpers/mesh';

jest.setTimeout(120_000);

const mesh = useLocalMesh({ archiver: { maxBatchMs: 200 } });
const run = randomUUID().slice(0, 8);

const archive = () => archiveOf(mesh);

/** The ids of the writes archived for the network (after `since`), as `change.eventIds` name them. */
async function archivedWriteIds(networkId: string, since?: Date): Promise<Set<string>> {
  const events = await archive().read({ networkId, ...(since ? { from: new Date(since.getTime() + 1) } : {}) });
  const ids = new Set<string>();
  for (const event of events) {
    if (event.type === EventType.ContactsWritten) for (const write of event.data.writes) ids.add(write.id);
    else if (event.type !== EventType.SnapshotRequested && event.type !== EventType.FlushRequested) ids.add(event.id);
  }
  return ids;
}

async function watchSubscriptions(): Promise<string[]> {
  const [subscriptions] = await mesh.pubsub.getSubscriptions();
  return subscriptions.map((s) => s.name).filter((name) => name.includes(`${mesh.mesh.topology.prefix}watch-`));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a catch-up subscription', () => {
  test('delivers every write after since exactly once across the seam while writers keep writing', async () => {
    const network = `catch-up-${run}`;
    const writers = [mesh.client({ writerId: 'w1' }), mesh.client({ writerId: 'w2' }), mesh.client({ writerId: 'w3' })];
    // Groups the writing deletes one by one. A group saved and soon deleted again may rightly have
    // its save's change skipped (a live change delivers the group as it is by then: gone).
    const doomed = Array.from({ length: 40 }, (_, k) => `doomed-${k}`);
    await Promise.all(
      doomed.map((groupId) => writers[2]!.saveGroupState(network, groupId, groupState(groupId, { k: 1 }))),
    );
    let writing = true;
    let count = 0;
    // Each writer writes its own contacts (every write changes something); w3 also saves one group
    // and deletes others, so group saves and deletes cross the seam too.
    const loops = writers.map(async (writer, index) => {
      for (let i = 0; writing; i++) {
        if (index === 2 && i % 5 === 4) {
          if (i % 10 === 4) await writer.saveGroupState(network, 'meta', groupState('meta', { round: i }));
          else if (doomed.length > 0) await writer.deleteGroup(network, doomed.shift()!);
        } else await writer.saveContactContent(network, `g${i % 2}`, `w${index}-c${i % 3}`, { i });
        count++;
        await sleep(15);
      }
    });
    await eventually(() => expect(count).toBeGreaterThan(60), { timeoutMs: 30_000, intervalMs: 20 });
    const since = new Date();
    await eventually(() => expect(count).toBeGreaterThan(60 + 90), { timeoutMs: 30_000, intervalMs: 20 });

    const subscriber = mesh.client({ writerId: 'subscriber' });
    const received: Array<{ state: GroupState | null; change: GroupChange }> = [];
    const unsubscribe = await subscriber.subscribe(network, (state, change) => void received.push({ state, change }), {
      since,
    });
    const atSeam = received.length;
    // Writing goes on past the seam, then stops.
    const countAtSeam = count;
    await eventually(() => expect(count).toBeGreaterThan(countAtSeam + 60), { timeoutMs: 30_000, intervalMs: 20 });
    writing = false;
    await Promise.all(loops);
    await Promise.all(writers.map((writer) => writer.flush()));

    const expected = await eventually(
      async () => {
        const ids = await archivedWriteIds(network, since);
        const delivered = new Set(received.flatMap((r) => r.change.eventIds ?? []));
        expect([...ids].filter((id) => !delivered.has(id))).toEqual([]);
        // Delivered and not (yet) archived: the last writes' batch may still be on its way.
        expect([...delivered].filter((id) => !ids.has(id))).toEqual([]);
        return ids;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(atSeam).toBeGreaterThan(0);
    expect(received.length).toBeGreaterThan(atSeam);
    const deliveries = new Map<string, number>();
    for (const { change } of received) {
      expect(change.eventIds?.length).toBeGreaterThan(0);
      for (const id of change.eventIds!) deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
    }
    // Exactly once, and nothing at or before since.
    expect([...deliveries].filter(([, times]) => times !== 1)).toEqual([]);
    expect([...deliveries.keys()].filter((id) => !expected.has(id))).toEqual([]);
    expect(deliveries.size).toBe(expected.size);
    // The last state delivered for each group is the state the mesh materialized.
    const last = new Map<string, GroupState | null>();
    for (const { state, change } of received) last.set(change.groupId, state);
    for (const [groupId, state] of last) expect(state).toEqual(await subscriber.loadGroupState(network, groupId));
    await unsubscribe();
  });

  test('since in the future, before the archive begins, or not a time is refused and creates nothing', async () => {
    const client = mesh.client();
    await client.saveContactContent(`since-${run}`, 'g', 'c', 1, { wait: 'materialized' });
    const begins = await eventually(
      async () => {
        const start = await archive().begins();
        expect(start).toBeDefined();
        return start!;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const before = await watchSubscriptions();
    const noop = () => undefined;
    const future = client.subscribe(`since-${run}`, noop, { since: new Date(Date.now() + 60_000) });
    await expect(future).rejects.toBeInstanceOf(SinceOutOfRangeError);
    await expect(future).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'future' });
    const early = new Date(begins.getTime() - 60_000);
    const tooEarly = client.subscribe(`since-${run}`, noop, { since: early.toISOString() });
    await expect(tooEarly).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'before-archive' });
    // The archive begins with its oldest event, accepted before the oldest batch began.
    const archiveBegins = ((await tooEarly.catch((error: unknown) => error)) as SinceOutOfRangeError).archiveBegins!;
    expect(archiveBegins.getTime()).toBeLessThanOrEqual(begins.getTime());
    expect(archiveBegins.getTime()).toBeGreaterThan(begins.getTime() - 60_000);
    await expect(tooEarly).rejects.toThrow(/before the event archive begins/);
    await expect(client.subscribe(`since-${run}`, noop, { since: 'yesterday' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    const withoutArchive = mesh.client({ storage: undefined, bucket: undefined });
    await expect(withoutArchive.subscribe(`since-${run}`, noop, { since: new Date() })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(await watchSubscriptions()).toEqual(before);
  });
});

describe('an unreadable archive', () => {
  test('a corrupt archive object fails the catch-up with an error naming it, and leaves no subscription', async () => {
    const client = mesh.client();
    await client.saveContactContent(`corrupt-${run}`, 'g', 'c', 1, { wait: 'materialized' });
    const since = new Date();
    const { topology, settings } = mesh.mesh;
    const name = archiveObjectName(topology.archive, new Date());
    const file = mesh.storage.bucket(settings.bucket).file(name);
    await file.save('{"not": "an event"\n', { resumable: false });
    const before = await watchSubscriptions();
    try {
      const failed = client.subscribe(`corrupt-${run}`, () => undefined, { since });
      await expect(failed).rejects.toBeInstanceOf(ArchiveCorruptError);
      await expect(failed).rejects.toMatchObject({ code: 'CORRUPT_DATA', object: name, line: 1 });
      expect(await watchSubscriptions()).toEqual(before);
    } finally {
      await file.delete();
    }
  });
});

describe('RemoteStorage through a gateway', () => {
  test('resumes after the gateway restarts from the last change it delivered: every write once, the network not re-read', async () => {
    const network = `resume-${run}`;
    const overlapMs = 2_000;
    // The archive must reach back past the resume point (the overlap before the last change).
    await mesh.client().saveContactContent(`seed-${run}`, 'g', 'c', 1, { wait: 'materialized' });
    await eventually(
      async () => {
        const begins = await archive().begins();
        expect(begins).toBeDefined();
        expect(Date.now()).toBeGreaterThan(begins!.getTime() + overlapMs + 1_000);
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const gatewayStorage = mesh.client({ writerId: 'gateway' });
    let networkReads = 0;
    const loadNetworkState = gatewayStorage.loadNetworkState.bind(gatewayStorage);
    gatewayStorage.loadNetworkState = (networkId: string) => {
      networkReads++;
      return loadNetworkState(networkId);
    };
    const keys = new ApiKeys(new GcsKeyRecords(mesh.storage, mesh.mesh.settings.bucket));
    const { key } = await keys.create({ scopes: { [network]: 'read' } });
    let gateway: Gateway = await startGateway({ storage: gatewayStorage, keys, logger: createMemoryLogger() });
    const port = gateway.port;
    const remote = new RemoteStorage({
      url: gateway.url,
      apiKey: key,
      reconnectMinMs: 20,
      reconnectMaxMs: 200,
      resumeOverlapMs: overlapMs,
      logger: createMemoryLogger(),
    });
    const received: GroupChange[] = [];
    try {
      const unsubscribe = await remote.subscribe(network, (_state, change) => void received.push(change));
      const readsAtSubscribe = networkReads;
      const writesBegan = new Date();
      const writer = mesh.client({ writerId: 'resume-writer' });
      let writing = true;
      let count = 0;
      const loop = (async () => {
        for (let i = 0; writing; i++) {
          await writer.saveContactContent(network, `g${i % 3}`, `c${i % 4}`, { i });
          count++;
          await sleep(15);
        }
      })();
      await eventually(() => expect(received.length).toBeGreaterThan(20), { timeoutMs: 30_000, intervalMs: 20 });
      await gateway.stop();
      // Writes go on while no gateway runs.
      const countAtStop = count;
      await eventually(() => expect(count).toBeGreaterThan(countAtStop + 40), { timeoutMs: 30_000, intervalMs: 20 });
      gateway = await startGateway({ storage: gatewayStorage, keys, port, logger: createMemoryLogger() });
      await eventually(() => expect(remote.resumes.fromArchive).toBe(1), { timeoutMs: 60_000, intervalMs: 50 });
      const countAtResume = count;
      await eventually(() => expect(count).toBeGreaterThan(countAtResume + 40), { timeoutMs: 30_000, intervalMs: 20 });
      writing = false;
      await loop;
      await writer.flush();

      const expected = await eventually(
        async () => {
          const ids = await archivedWriteIds(network);
          const delivered = new Set(received.flatMap((change) => change.eventIds ?? []));
          expect([...ids].filter((id) => !delivered.has(id))).toEqual([]);
          // Delivered and not (yet) archived: the last writes' batch may still be on its way.
          expect([...delivered].filter((id) => !ids.has(id))).toEqual([]);
          return ids;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      const deliveries = new Map<string, number>();
      for (const change of received)
        for (const id of change.eventIds ?? []) deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
      expect([...deliveries].filter(([, times]) => times !== 1)).toEqual([]);
      expect(deliveries.size).toBe(expected.size);
      expect(remote.reconnects).toBeGreaterThanOrEqual(1);
      expect(remote.resumes).toEqual({ fromArchive: 1, reread: 0 });
      // The resume did not read the network again.
      expect(networkReads).toBe(readsAtSubscribe);
      await unsubscribe();

      // A RemoteStorage subscription can catch up itself: every write again, once.
      const caughtUp = new Map<string, number>();
      const again = await remote.subscribe(
        network,
        (_state, change) => {
          for (const id of change.eventIds ?? []) caughtUp.set(id, (caughtUp.get(id) ?? 0) + 1);
        },
        { since: writesBegan },
      );
      expect([...caughtUp.keys()].sort()).toEqual([...expected].sort());
      expect([...caughtUp.values()].every((times) => times === 1)).toBe(true);
      await again();
    } finally {
      await remote.close();
      await gateway.stop();
    }
  });

  test("a catch-up needs a storage subscription of its own: it counts against the gateway's bound", async () => {
    const network = `bound-${run}`;
    await mesh.client().saveContactContent(network, 'g', 'c', 1, { wait: 'materialized' });
    const keys = new ApiKeys(new GcsKeyRecords(mesh.storage, mesh.mesh.settings.bucket));
    const { key } = await keys.create({ scopes: { [network]: 'read' } });
    const gateway = await startGateway({
      storage: mesh.client({ writerId: 'bounded-gateway' }),
      keys,
      maxWatchedNetworks: 1,
      logger: createMemoryLogger(),
    });
    const remote = new RemoteStorage({ url: gateway.url, apiKey: key, logger: createMemoryLogger() });
    try {
      const live = await remote.subscribe(network, () => undefined);
      expect(gateway.stats()).toMatchObject({ storageSubscriptions: 1, subscriptions: 1 });
      // A second live listener shares the network's subscription; a catch-up would be a second one.
      await expect(remote.subscribe(network, () => undefined, { since: new Date() })).rejects.toMatchObject({
        code: 'LIMIT_EXCEEDED',
      });
      const shared = await remote.subscribe(`${network}/g`, () => undefined);
      expect(gateway.stats()).toMatchObject({ storageSubscriptions: 1, subscriptions: 2 });
      await live();
      await shared();
    } finally {
      await remote.close();
      await gateway.stop();
    }
  });
});
