/**
 * Streaming snapshots, snapshot ids made at most once, retention, change detection and the
 * snapshot job, on the memory and filesystem stores; the snapshot function over HTTP.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import {
  DocumentStorage,
  encode,
  FileSystemStateStore,
  InvalidArgumentError,
  InvalidIdError,
  MemoryStateStore,
  NetworkNotFoundError,
  type NetworkState,
  type StateStore,
} from 'super-spine';
import { idToKey } from '../../shared/ids';
import { eventually } from 'super-spine/testing';
import { encodeNetworkStateChunks, SNAPSHOT_READ_AHEAD } from '../../shared/backends/snapshot-stream';
import { loadRetentionSettings, slotSnapshotId, takeScheduledSnapshots } from '../../shared/snapshots';
import { createSnapshotHandler } from '../../functions/snapshot/handler';
import { createMemoryLogger } from '../helpers/emulators';
import { groupState } from '../helpers/gcs';

const quiet = createMemoryLogger();

/** Everything the codec has to carry, spread over groups, one of them empty. */
function awkwardNetwork(): NetworkState {
  const root = groupState(
    'root',
    { a: 1, b: 'two', c: null },
    { subgroupIds: ['users/@alice'], attributes: { 'bassline.tags': ['x'] } },
  );
  root.wires.set('w1', { id: 'w1', groupId: 'root', fromId: 'a', toId: 'b', type: 'directed' });
  root.group.wireIds.push('w1');
  const alice = groupState(
    'users/@alice',
    {
      map: new Map<unknown, unknown>([
        ['k', new Set([1, 2])],
        [3, { deep: [undefined, NaN, -0, Infinity] }],
      ]),
      date: new Date(1_700_000_000_000),
      tagged: { $type: 'not a tag', 'quote"s': 'é\u2028' },
    },
    { parentId: 'root' },
  );
  return {
    groups: new Map([
      ['root', root],
      ['users/@alice', alice],
      ['empty', groupState('empty', {})],
    ]),
    rootGroupId: 'root',
    currentGroupId: 'users/@alice',
  };
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Resolves once the clock has moved `ms` past `time`, so file and object times can tell writes apart. */
const clockPast = (time: number | Date, ms = 30) =>
  eventually(() => expect(Date.now()).toBeGreaterThan(new Date(time).getTime() + ms));

let temp: string;
beforeAll(async () => {
  temp = await fs.mkdtemp(path.join(os.tmpdir(), 'spine-snapshots-'));
});
afterAll(async () => {
  await fs.rm(temp, { recursive: true, force: true });
});

interface Backend {
  store: StateStore;
  storage: DocumentStorage;
  /** Where the filesystem store keeps a network's snapshots; undefined for memory. */
  snapshotDir?: (networkId: string) => string;
}

const backends: Array<[string, () => Backend]> = [
  [
    'memory',
    () => {
      const store = new MemoryStateStore();
      return { store, storage: new DocumentStorage(store, { logger: quiet }) };
    },
  ],
  [
    'filesystem',
    () => {
      const basePath = path.join(temp, Math.random().toString(36).slice(2));
      const store = new FileSystemStateStore({ basePath });
      return {
        store,
        storage: new DocumentStorage(store, { logger: quiet }),
        snapshotDir: (networkId) => path.join(basePath, 'networks', idToKey(networkId), 'snapshots'),
      };
    },
  ],
];

describe('encodeNetworkStateChunks', () => {
  it('gives exactly the bytes encode gives, one chunk per group plus the closing frame', async () => {
    for (const state of [awkwardNetwork(), { groups: new Map(), rootGroupId: 'r', currentGroupId: '[]' }]) {
      async function* groups() {
        yield* state.groups;
      }
      const chunks: string[] = [];
      for await (const chunk of encodeNetworkStateChunks(state, groups())) chunks.push(chunk);
      expect(chunks.join('')).toBe(encode(state));
      expect(chunks).toHaveLength(state.groups.size + 1);
    }
  });
});

describe.each(backends)('%s snapshots', (_name, makeBackend) => {
  let backend: Backend;
  let storage: DocumentStorage;

  beforeEach(async () => {
    backend = makeBackend();
    storage = backend.storage;
    await storage.initialize();
  });
  afterEach(async () => {
    await storage.close();
  });

  it('streams the same bytes encode(state) gives, with their size and sha256, and loads them back', async () => {
    const state = awkwardNetwork();
    await storage.saveNetworkState('n', state);
    const result = await storage.writeSnapshot('n', 'first');
    expect(result.created).toBe(true);
    const stored = await backend.store.getSnapshot('n', result.info.id);
    const expected = encode(await storage.loadNetworkState('n'));
    expect(stored).toBe(expected);
    expect(result.info).toMatchObject({
      networkId: 'n',
      label: 'first',
      size: Buffer.byteLength(expected, 'utf8'),
      sha256: sha256(expected),
    });
    const [listed] = await storage.listSnapshots('n');
    expect(listed).toEqual(result.info);
    const loaded = await storage.loadSnapshot('n', result.info.id);
    expect(encode(loaded)).toBe(expected);
    expect(loaded.groups.get('users/@alice')?.contacts.get('map')?.content).toEqual(
      state.groups.get('users/@alice')?.contacts.get('map')?.content,
    );
  });

  it('snapshots a network without groups', async () => {
    await storage.saveNetworkState('bare', { groups: new Map(), rootGroupId: 'root', currentGroupId: 'root' });
    const id = await storage.saveSnapshot('bare');
    expect(await backend.store.getSnapshot('bare', id)).toBe(encode(await storage.loadNetworkState('bare')));
  });

  it('reads the network a group at a time (and a few ahead) while the body is written', async () => {
    for (let g = 0; g < 12; g++) await storage.saveGroupState('n', `g${g}`, groupState(`g${g}`, { a: g, b: `${g}` }));
    const store = backend.store;
    let groupsRead = 0;
    const getGroup = store.getGroup.bind(store);
    store.getGroup = (networkId, groupId) => {
      groupsRead++;
      return getGroup(networkId, groupId);
    };
    const put = store.putSnapshotStream!.bind(store);
    const readWhenPulled: number[] = [];
    store.putSnapshotStream = (networkId, info, chunks) =>
      put(
        networkId,
        info,
        (async function* () {
          for await (const chunk of chunks) {
            readWhenPulled.push(groupsRead);
            yield chunk;
          }
        })(),
      );
    await storage.saveSnapshot('n');
    // Chunk i (group i) arrives when at most groups 0..i+SNAPSHOT_READ_AHEAD were read, never the whole network.
    expect(readWhenPulled).toHaveLength(13);
    readWhenPulled.slice(0, 12).forEach((read, i) => expect(read).toBeLessThanOrEqual(i + 1 + SNAPSHOT_READ_AHEAD));
    expect(readWhenPulled[0]).toBeLessThan(12);
  });

  it('makes the snapshot of a given id once: a second request returns the id without writing', async () => {
    await storage.saveContactContent('n', 'g', 'c', 1);
    const first = await storage.writeSnapshot('n', 'scheduled', { snapshotId: 'slot-20261121T0600Z' });
    expect(first).toMatchObject({ created: true, info: { id: 'slot-20261121T0600Z', label: 'scheduled' } });
    await storage.saveContactContent('n', 'g', 'c', 2);
    const put = jest.spyOn(backend.store, 'putSnapshotStream');
    expect(await storage.saveSnapshot('n', 'again', { snapshotId: 'slot-20261121T0600Z' })).toBe('slot-20261121T0600Z');
    expect(put).not.toHaveBeenCalled();
    put.mockRestore();
    const again = await storage.writeSnapshot('n', undefined, { snapshotId: 'slot-20261121T0600Z' });
    expect(again).toEqual({ created: false, info: first.info });
    expect(await storage.listSnapshots('n')).toEqual([first.info]);
    // The snapshot is the state as of the first request.
    expect((await storage.loadSnapshot('n', 'slot-20261121T0600Z')).groups.get('g')?.contacts.get('c')?.content).toBe(
      1,
    );

    // Requests at once, too.
    const results = await Promise.all(
      Array.from({ length: 5 }, () => storage.writeSnapshot('n', undefined, { snapshotId: 'burst' })),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect((await storage.listSnapshots('n')).map((s) => s.id).sort()).toEqual(['burst', 'slot-20261121T0600Z']);

    await expect(storage.saveSnapshot('n', undefined, { snapshotId: '../x' })).rejects.toBeInstanceOf(InvalidIdError);
    await expect(storage.saveSnapshot('n', undefined, { snapshotId: 'a/b' })).rejects.toBeInstanceOf(InvalidIdError);
    await expect(storage.saveSnapshot('missing', undefined, { snapshotId: 'x' })).rejects.toBeInstanceOf(
      NetworkNotFoundError,
    );
  });

  it('never overwrites a snapshot body, and adopts a body whose info was never written', async () => {
    await storage.saveContactContent('n', 'g', 'c', 1);
    const store = backend.store;
    const info = { id: 's1', networkId: 'n', createdAt: new Date() };
    async function* chunks(text: string) {
      yield text;
    }
    const first = await store.putSnapshotStream!('n', info, chunks('{"first":1}'));
    expect(first).toEqual({ created: true, info: { ...info, size: 11, sha256: sha256('{"first":1}') } });
    const second = await store.putSnapshotStream!('n', { ...info, label: 'other' }, chunks('{"second":2}'));
    expect(second.created).toBe(false);
    expect(second.info).toEqual(first.info);
    expect(await store.getSnapshot('n', 's1')).toBe('{"first":1}');

    // A racing writer that finishes the same id while this body is still streaming keeps its snapshot.
    const racer = { id: 's2', networkId: 'n', createdAt: new Date() };
    const raced = await store.putSnapshotStream!(
      'n',
      racer,
      (async function* () {
        yield '{"late":';
        await store.putSnapshot('n', { ...racer, label: 'racer' }, '{"racer":1}');
        yield '1}';
      })(),
    );
    expect(raced.created).toBe(false);
    expect(await store.getSnapshot('n', 's2')).toBe('{"racer":1}');
    expect((await store.getSnapshotInfo!('n', 's2'))?.label).toBe('racer');

    if (!backend.snapshotDir) return; // memory writes body and info in one step: no orphan body
    // A crash between body and info leaves a body alone: the next write of that id completes it as it is.
    const dir = backend.snapshotDir('n');
    await fs.writeFile(path.join(dir, 'orphan.json'), '{"orphan":true}');
    expect(await store.getSnapshotInfo!('n', 'orphan')).toBeNull();
    const adopted = await store.putSnapshotStream!(
      'n',
      { id: 'orphan', networkId: 'n', createdAt: new Date() },
      chunks('{"new":1}'),
    );
    expect(adopted.created).toBe(false);
    expect(adopted.info).toMatchObject({ id: 'orphan', size: 15, sha256: sha256('{"orphan":true}') });
    expect(await store.getSnapshot('n', 'orphan')).toBe('{"orphan":true}');
    expect((await fs.readdir(dir)).filter((name) => name.startsWith('.'))).toEqual([]);
  });

  it('prunes all but the newest N snapshots, oldest first', async () => {
    await storage.saveContactContent('n', 'g', 'c', 1);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await storage.saveSnapshot('n', `s${i}`));
    expect(await storage.pruneSnapshots('n', 2)).toEqual(ids.slice(0, 3));
    expect((await storage.listSnapshots('n')).map((s) => s.id)).toEqual([ids[4], ids[3]]);
    expect(await storage.pruneSnapshots('n', 2)).toEqual([]);
    expect(await storage.pruneSnapshots('n', 0)).toEqual([ids[3], ids[4]]);
    expect(await storage.listSnapshots('n')).toEqual([]);
    await expect(storage.pruneSnapshots('n', -1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(storage.pruneSnapshots('n', 1.5)).rejects.toThrow('keep must be a whole number');
  });

  it('moves lastChanged on every kind of state write and not on snapshots', async () => {
    expect(await storage.lastChanged('n')).toBeNull();
    await storage.saveContactContent('n', 'g', 'c', 1);
    const first = await storage.lastChanged('n');
    expect(first).toBeInstanceOf(Date);

    // Snapshots, their pruning and deletion change nothing.
    await clockPast(first!);
    await storage.saveSnapshot('n');
    await storage.saveSnapshot('n', undefined, { snapshotId: 'named' });
    await storage.pruneSnapshots('n', 1);
    expect(await storage.lastChanged('n')).toEqual(first);
    await storage.deleteSnapshot('n', 'named');
    expect(await storage.lastChanged('n')).toEqual(first);

    let previous = first!;
    const writes: Array<[string, () => Promise<unknown>]> = [
      ['contact write', () => storage.saveContactContent('n', 'g', 'c', 2)],
      ['new contact', () => storage.saveContactContent('n', 'g', 'd', 1)],
      ['group save', () => storage.saveGroupState('n', 'h', groupState('h', { x: 1 }))],
      ['contact removed by a group save', () => storage.saveGroupState('n', 'h', groupState('h', {}))],
      ['group delete', () => storage.deleteGroup('n', 'h')],
    ];
    const moved: Array<[string, boolean]> = [];
    for (const [what, write] of writes) {
      await clockPast(previous);
      await write();
      const now = (await storage.lastChanged('n'))!;
      moved.push([what, now.getTime() > previous.getTime()]);
      previous = now;
    }
    expect(moved).toEqual(writes.map(([what]) => [what, true]));
    await storage.deleteNetwork('n');
    expect(await storage.lastChanged('n')).toBeNull();
  });

  it('snapshots only networks changed since their newest snapshot', async () => {
    await storage.saveContactContent('a', 'g', 'c', 1);
    await storage.saveContactContent('b', 'g', 'c', 1);
    expect(await storage.snapshotIfChanged('a', undefined, { changeToleranceMs: 0 })).toMatchObject({ created: true });
    await clockPast((await storage.lastChanged('b'))!, 50);
    const all = await takeScheduledSnapshots(storage, { networks: 'all', maxSnapshots: 5, logger: quiet });
    expect(all.created.map((c) => c.networkId)).toEqual(['a', 'b']);

    await clockPast((await storage.listSnapshots('a'))[0]!.createdAt);
    await storage.saveContactContent('a', 'g', 'c', 2);
    // Past the tolerance, so the snapshot about to be taken is clearly newer than the write.
    await clockPast((await storage.lastChanged('a'))!);
    const options = { networks: 'changed' as const, maxSnapshots: 5, changeToleranceMs: 10, logger: quiet };
    const changed = await takeScheduledSnapshots(storage, options);
    expect(changed.created.map((c) => c.networkId)).toEqual(['a']);
    expect(changed.skipped).toEqual(['b']);
    expect(
      (await storage.loadSnapshot('a', changed.created[0]!.snapshotId)).groups.get('g')?.contacts.get('c')?.content,
    ).toBe(2);

    expect(await takeScheduledSnapshots(storage, options)).toEqual({
      created: [],
      skipped: ['a', 'b'],
      pruned: [],
      failed: [],
    });
    // A write just before a snapshot, within the tolerance, counts as after it: one more snapshot, not a missed change.
    expect(await storage.snapshotIfChanged('b', undefined, { changeToleranceMs: 60_000 })).toMatchObject({
      created: true,
    });
  });

  it('retention keeps a labelled snapshot (not counted) unless pruneLabelled, and a later run still snapshots', async () => {
    await storage.saveContactContent('a', 'g', 'c', 0);
    const kept = await storage.saveSnapshot('a', 'keep-me-before-migration');
    for (let hour = 1; hour <= 4; hour++) {
      await clockPast((await storage.listSnapshots('a'))[0]!.createdAt, 2);
      await storage.saveContactContent('a', 'g', 'c', hour);
      await takeScheduledSnapshots(storage, {
        networks: ['a'],
        slot: new Date(`2026-11-21T0${hour}:00:00Z`),
        maxSnapshots: 2,
        logger: quiet,
      });
    }
    expect((await storage.listSnapshots('a')).map((s) => s.id)).toEqual([
      'slot-20261121T0400Z',
      'slot-20261121T0300Z',
      kept,
    ]);
    expect((await storage.loadSnapshot('a', kept)).groups.get('g')?.contacts.get('c')?.content).toBe(0);

    await clockPast((await storage.listSnapshots('a'))[0]!.createdAt, 2);
    await storage.saveContactContent('a', 'g', 'c', 5);
    const asked = await takeScheduledSnapshots(storage, {
      networks: ['a'],
      slot: new Date('2026-11-21T05:00:00Z'),
      maxSnapshots: 2,
      pruneLabelled: true,
      logger: quiet,
    });
    expect(asked.pruned).toEqual([{ networkId: 'a', snapshotIds: [kept, 'slot-20261121T0300Z'] }]);
    expect((await storage.listSnapshots('a')).map((s) => s.id)).toEqual(['slot-20261121T0500Z', 'slot-20261121T0400Z']);
    await expect(
      takeScheduledSnapshots(storage, {
        networks: ['a'],
        maxSnapshots: 2,
        pruneLabelled: 'yes' as never,
        logger: quiet,
      }),
    ).rejects.toThrow('pruneLabelled must be true or false');
    expect(loadRetentionSettings({})).toEqual({ pruneLabelled: false });
    expect(loadRetentionSettings({ SPINE_PRUNE_LABELLED_SNAPSHOTS: 'true' })).toEqual({ pruneLabelled: true });
    expect(() => loadRetentionSettings({ SPINE_PRUNE_LABELLED_SNAPSHOTS: 'yes' })).toThrow(
      'setting SPINE_PRUNE_LABELLED_SNAPSHOTS="yes" is invalid',
    );
  });

  it('makes one snapshot per network for a slot delivered twice, and keeps the newest maxSnapshots', async () => {
    await storage.saveContactContent('a', 'g', 'c', 1);
    await storage.saveContactContent('b', 'g', 'c', 1);
    const slot = new Date('2026-11-21T06:00:00.000Z');
    expect(slotSnapshotId(slot)).toBe('slot-20261121T0600Z');
    const first = await takeScheduledSnapshots(storage, { networks: 'all', slot, maxSnapshots: 2, logger: quiet });
    expect(first.created).toEqual([
      { networkId: 'a', snapshotId: 'slot-20261121T0600Z' },
      { networkId: 'b', snapshotId: 'slot-20261121T0600Z' },
    ]);
    await storage.saveContactContent('a', 'g', 'c', 2);
    const doubled = await takeScheduledSnapshots(storage, {
      networks: 'changed',
      slot,
      maxSnapshots: 2,
      changeToleranceMs: 0,
      logger: quiet,
    });
    expect(doubled).toEqual({ created: [], skipped: ['a', 'b'], pruned: [], failed: [] });
    expect((await storage.listSnapshots('a')).map((s) => s.id)).toEqual(['slot-20261121T0600Z']);

    for (const hour of ['07', '08']) {
      await clockPast((await storage.listSnapshots('a'))[0]!.createdAt, 2);
      await takeScheduledSnapshots(storage, {
        networks: ['a'],
        slot: new Date(`2026-11-21T${hour}:00:30Z`),
        maxSnapshots: 2,
        logger: quiet,
      });
    }
    expect((await storage.listSnapshots('a')).map((s) => s.id)).toEqual(['slot-20261121T0800Z', 'slot-20261121T0700Z']);
    await expect(
      takeScheduledSnapshots(storage, { networks: ['a', 'nope'], maxSnapshots: 2, logger: quiet }),
    ).rejects.toBeInstanceOf(NetworkNotFoundError);
    await expect(takeScheduledSnapshots(storage, { networks: 'all', maxSnapshots: 0, logger: quiet })).rejects.toThrow(
      'maxSnapshots must be',
    );
    await expect(
      takeScheduledSnapshots(storage, { networks: 'some' as never, maxSnapshots: 1, logger: quiet }),
    ).rejects.toThrow('networks must be');
  });
});

describe('the snapshot function over HTTP', () => {
  const logger = createMemoryLogger();
  let storage: DocumentStorage;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    storage = new DocumentStorage(new MemoryStateStore(), { logger });
    functions.http(
      'snapshot-test',
      createSnapshotHandler({ state: storage, maxSnapshots: 3, logger, changeToleranceMs: 0 }),
    );
    server = getTestServer('snapshot-test');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await storage.close();
  });

  async function post(body: unknown, headers: Record<string, string> = {}) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  }

  it('snapshots the networks asked for and answers with the summary', async () => {
    await storage.saveContactContent('h1', 'g', 'c', 1);
    await storage.saveContactContent('h2', 'g', 'c', 1);
    const all = await post({ networks: 'all', label: 'manual' });
    expect(all.status).toBe(200);
    expect(all.body).toEqual({
      created: [
        { networkId: 'h1', snapshotId: expect.any(String) },
        { networkId: 'h2', snapshotId: expect.any(String) },
      ],
      skipped: [],
      pruned: [],
      failed: [],
    });
    expect((await storage.listSnapshots('h1'))[0]?.label).toBe('manual');

    const one = await post({ networkId: 'h2', snapshotId: 'requested-1' });
    expect(one).toEqual({
      status: 200,
      body: { created: [{ networkId: 'h2', snapshotId: 'requested-1' }], skipped: [], pruned: [], failed: [] },
    });
    const repeated = await post({ networkId: 'h2', snapshotId: 'requested-1' });
    expect(repeated.body).toMatchObject({ created: [], skipped: ['h2'] });
  });

  it('names snapshots after the X-CloudScheduler-ScheduleTime slot, so a doubled slot makes one', async () => {
    await storage.saveContactContent('slotted', 'g', 'c', 1);
    const headers = { 'X-CloudScheduler-ScheduleTime': '2026-11-21T06:00:00.000Z' };
    // Cloud Scheduler sends its body as application/octet-stream unless the job sets a content type.
    const first = await post({ networks: ['slotted'] }, { ...headers, 'content-type': 'application/octet-stream' });
    expect(first).toEqual({
      status: 200,
      body: {
        slot: '2026-11-21T06:00:00.000Z',
        created: [{ networkId: 'slotted', snapshotId: 'slot-20261121T0600Z' }],
        skipped: [],
        pruned: [],
        failed: [],
      },
    });
    await storage.saveContactContent('slotted', 'g', 'c', 2);
    const second = await post({ networks: ['slotted'] }, headers);
    expect(second.body).toMatchObject({ created: [], skipped: ['slotted'] });
    expect((await storage.listSnapshots('slotted')).map((s) => s.id)).toEqual(['slot-20261121T0600Z']);
  });

  it('answers 400 for bad input and 404 for an unknown network, writing nothing', async () => {
    const before = await storage.listNetworks();
    const cases: Array<[unknown, RegExp, Record<string, string>?]> = [
      [{ networks: 'some' }, /networks must be "all", "changed" or a list/],
      [{ networks: ['ok', 7] }, /networks must be/],
      [{ networks: ['a/b'] }, /invalid network id "a\/b"/],
      [{ snapshotId: 'x' }, /snapshotId names one snapshot and needs networkId/],
      [{ networkId: 'h1', networks: 'all' }, /not both/],
      [{ networkId: 'h1', snapshotId: '../up' }, /invalid snapshot id/],
      [{ colour: 'blue' }, /unknown field "colour"/],
      [{ label: 3 }, /label must be a string/],
      [{}, /X-CloudScheduler-ScheduleTime must be an RFC 3339 time/, { 'X-CloudScheduler-ScheduleTime': 'yesterday' }],
      ['"all"', /JSON object/, { 'content-type': 'application/octet-stream' }],
      ['{not json', /JSON object/, { 'content-type': 'text/plain' }],
    ];
    for (const [body, message, headers] of cases) {
      const answer = await post(body, headers);
      expect([JSON.stringify(body), answer.status]).toEqual([JSON.stringify(body), 400]);
      expect(answer.body.error.message).toMatch(message);
    }
    const missing = await post({ networkId: 'ghost' });
    expect(missing).toEqual({
      status: 404,
      body: { error: { code: 'NETWORK_NOT_FOUND', message: new NetworkNotFoundError('ghost').message } },
    });
    expect((await post({ networks: ['h1', 'ghost'] })).status).toBe(404);
    expect(await storage.listNetworks()).toEqual(before);
    expect((await fetch(url)).status).toBe(405);
  });

  it('refuses a bad maxSnapshots when the handler is made', () => {
    expect(() => createSnapshotHandler({ state: storage, maxSnapshots: 0, logger })).toThrow(
      'maxSnapshots must be a whole number',
    );
  });

  it('answers 500 with the summary when a network fails, after doing the others', async () => {
    const failing = new DocumentStorage(new MemoryStateStore(), { logger });
    await failing.saveContactContent('ok', 'g', 'c', 1);
    await failing.saveContactContent('bad', 'g', 'c', 1);
    const original = failing.writeSnapshot.bind(failing);
    failing.writeSnapshot = (networkId, ...rest) =>
      networkId === 'bad' ? Promise.reject(new Error('disk full')) : original(networkId, ...rest);
    functions.http('snapshot-failing', createSnapshotHandler({ state: failing, maxSnapshots: 3, logger }));
    const failingServer = getTestServer('snapshot-failing');
    await new Promise<void>((resolve) => failingServer.listen(0, '127.0.0.1', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(failingServer.address() as AddressInfo).port}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ networks: 'all' }),
      });
      expect(response.status).toBe(500);
      expect(await response.json()).toEqual({
        created: [{ networkId: 'ok', snapshotId: expect.any(String) }],
        skipped: [],
        pruned: [],
        failed: [{ networkId: 'bad', error: 'disk full' }],
      });
    } finally {
      await new Promise<void>((resolve) => failingServer.close(() => resolve()));
      await failing.close();
    }
  });
});
