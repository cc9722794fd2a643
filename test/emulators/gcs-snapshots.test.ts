/**
 * Snapshots on Cloud Storage (the local Storage emulator, official client): streamed bodies equal
 * to the codec's encoding, create-only objects, ids made at most once even between processes,
 * retention, change detection from listings, and listings that read no snapshot body.
 */
import { createHash } from 'node:crypto';
import { DocumentStorage, encode, type GcsStorageOptions, type NetworkState } from 'super-spine';
import { GcsStateStore, GcsStorage } from 'super-spine/gcs';
import { idToKey } from '../../shared/ids';
import { eventually } from 'super-spine/testing';
import { takeScheduledSnapshots } from '../../shared/snapshots';
import { createMemoryLogger } from '../helpers/emulators';
import { emulatorClient, freshPrefix, groupState, useStorageEmulator } from '../helpers/gcs';

process.env.METADATA_SERVER_DETECTION = 'none';

const BUCKET = `gcs-snapshots-test-${process.pid}`;
const quiet = createMemoryLogger();

const gcs = useStorageEmulator(BUCKET);

function newStorage(options: Partial<GcsStorageOptions> = {}): GcsStorage {
  return new GcsStorage({ bucket: BUCKET, storage: gcs.client, logger: quiet, ...options });
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const clockPast = (time: number | Date, ms = 30) =>
  eventually(() => expect(Date.now()).toBeGreaterThan(new Date(time).getTime() + ms));

async function download(name: string): Promise<Buffer> {
  const [data] = await gcs.client.bucket(BUCKET).file(name).download();
  return data;
}

describe('GcsStorage snapshots', () => {
  it('streams the bytes encode(state) gives into one object, with size and sha256 in its info', async () => {
    const prefix = freshPrefix('bytes');
    const storage = newStorage({ prefix });
    const state: NetworkState = {
      groups: new Map([
        [
          'root',
          groupState(
            'root',
            { a: new Map([['k', new Set([1, 2])]]), b: new Date(1_700_000_000_000), c: { $type: 'x' } },
            { subgroupIds: ['users/@alice'] },
          ),
        ],
        ['users/@alice', groupState('users/@alice', { d: [undefined, NaN, -0] }, { parentId: 'root' })],
        ['empty', groupState('empty', {})],
      ]),
      rootGroupId: 'root',
      currentGroupId: 'users/@alice',
    };
    await storage.saveNetworkState('n', state);
    const result = await storage.writeSnapshot('n', 'bytes');
    const expected = encode(await storage.loadNetworkState('n'));
    const body = await download(`${prefix}networks/n/snapshots/${result.info.id}.json`);
    expect(body.toString('utf8')).toBe(expected);
    expect(result).toEqual({
      created: true,
      info: {
        id: result.info.id,
        networkId: 'n',
        label: 'bytes',
        createdAt: expect.any(Date),
        size: body.length,
        sha256: sha256(body),
      },
    });
    expect(await storage.listSnapshots('n')).toEqual([result.info]);
    expect(encode(await storage.loadSnapshot('n', result.info.id))).toBe(expected);
    await storage.close();
  });

  it('never overwrites a snapshot object: a second write of the id is refused by its generation precondition', async () => {
    const prefix = freshPrefix('create-only');
    const store = new GcsStateStore({ bucket: BUCKET, prefix, storage: gcs.client });
    await store.init();
    const info = { id: 's1', networkId: 'n', createdAt: new Date() };
    async function* chunks(...parts: string[]) {
      yield* parts;
    }
    const before = gcs.emulator.stats();
    const first = await store.putSnapshotStream('n', info, chunks('{"first"', ':1}'));
    expect(first).toEqual({ created: true, info: { ...info, size: 11, sha256: sha256('{"first":1}') } });

    // Slip past the info check, as a writer racing this one would: the body upload itself must refuse.
    const getSnapshotInfo = store.getSnapshotInfo.bind(store);
    store.getSnapshotInfo = async () => {
      store.getSnapshotInfo = getSnapshotInfo;
      return null;
    };
    const second = await store.putSnapshotStream('n', { ...info, label: 'other' }, chunks('{"second":2}'));
    expect(second).toEqual({ created: false, info: first.info });
    expect((await download(`${prefix}networks/n/snapshots/s1.json`)).toString()).toBe('{"first":1}');
    expect(gcs.writesSince(before.writesByObject, prefix)).toEqual({
      'networks/n/snapshots/s1.json': 1,
      'networks/n/snapshots/s1.info.json': 1,
    });
    expect(gcs.emulator.stats().preconditionFailures - before.preconditionFailures).toBe(2); // the body, then the info
  });

  it('adopts a snapshot body whose info was never written (a crash in between), as it is', async () => {
    const prefix = freshPrefix('orphan');
    const storage = newStorage({ prefix });
    await storage.saveContactContent('n', 'g', 'c', 1);
    const name = `${prefix}networks/n/snapshots/${idToKey('slot-20261121T0600Z')}.json`;
    await gcs.client.bucket(BUCKET).file(name).save('{"orphan":true}', { resumable: false });
    const [metadata] = await gcs.client.bucket(BUCKET).file(name).getMetadata();
    expect(await storage.listSnapshots('n')).toEqual([]);

    const result = await storage.writeSnapshot('n', undefined, { snapshotId: 'slot-20261121T0600Z' });
    expect(result.created).toBe(false);
    expect(result.info).toMatchObject({
      id: 'slot-20261121T0600Z',
      size: 15,
      sha256: sha256('{"orphan":true}'),
      createdAt: new Date(metadata.timeCreated!),
    });
    expect(await storage.listSnapshots('n')).toEqual([result.info]);
    expect((await download(name)).toString()).toBe('{"orphan":true}');
    await storage.close();
  });

  it('makes the snapshot of an id once, also when two processes ask for it at the same time', async () => {
    const prefix = freshPrefix('once');
    // Two instances with their own clients: in-process locks do not see each other.
    const a = newStorage({ prefix });
    const b = newStorage({ prefix, storage: emulatorClient(gcs.emulator) });
    await a.saveContactContent('n', 'g', 'c', 1);
    const before = gcs.emulator.stats().writesByObject;
    const results = await Promise.all(
      [a, b, a, b].map((s) => s.writeSnapshot('n', 'slot', { snapshotId: 'slot-20261121T0600Z' })),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    for (const result of results) expect(result.info.sha256).toBe(results[0]!.info.sha256);
    expect(gcs.writesSince(before, prefix)).toEqual({
      'networks/n/snapshots/slot-20261121T0600Z.json': 1,
      'networks/n/snapshots/slot-20261121T0600Z.info.json': 1,
    });

    // Asked again later: the id, and not one object written.
    await a.saveContactContent('n', 'g', 'c', 2);
    const after = gcs.emulator.stats().writesByObject;
    expect(await b.saveSnapshot('n', undefined, { snapshotId: 'slot-20261121T0600Z' })).toBe('slot-20261121T0600Z');
    expect(gcs.writesSince(after, prefix)).toEqual({});
    expect((await a.loadSnapshot('n', 'slot-20261121T0600Z')).groups.get('g')?.contacts.get('c')?.content).toBe(1);
    await a.close();
    await b.close();
  });

  it('lists snapshots from their small info objects, never downloading a body', async () => {
    const prefix = freshPrefix('listing');
    const storage = newStorage({ prefix });
    const contents = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`c${i}`, 'x'.repeat(100)]));
    await storage.saveGroupState('n', 'g', groupState('g', contents));
    for (let i = 0; i < 3; i++) await storage.saveSnapshot('n', `s${i}`);
    const downloads = gcs.emulator.stats().downloads;
    const listed = await storage.listSnapshots('n');
    expect(listed.map((s) => s.label)).toEqual(['s2', 's1', 's0']);
    expect(listed.every((s) => s.size! > 5000 && /^[0-9a-f]{64}$/.test(s.sha256!))).toBe(true);
    expect(gcs.emulator.stats().downloads - downloads).toBe(3);
    await storage.close();
  });

  it('prunes all but the newest N snapshots', async () => {
    const prefix = freshPrefix('prune');
    const storage = newStorage({ prefix });
    await storage.saveContactContent('n', 'g', 'c', 1);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await storage.saveSnapshot('n'));
    expect(await storage.pruneSnapshots('n', 1)).toEqual(ids.slice(0, 3));
    expect((await storage.listSnapshots('n')).map((s) => s.id)).toEqual([ids[3]]);
    const [files] = await gcs.client.bucket(BUCKET).getFiles({ prefix: `${prefix}networks/n/snapshots/` });
    expect(files.map((f) => f.name.slice(prefix.length)).sort()).toEqual([
      `networks/n/snapshots/${ids[3]}.info.json`,
      `networks/n/snapshots/${ids[3]}.json`,
    ]);
    await storage.close();
  });

  it('tells when the network last changed from listings alone: writes move it, snapshots do not', async () => {
    const prefix = freshPrefix('changed');
    // Small pages, so the listing has to page through the network's objects.
    const store = new GcsStateStore({ bucket: BUCKET, prefix, storage: gcs.client, listPageSize: 2 });
    const storage = new DocumentStorage(store, { logger: quiet });
    expect(await storage.lastChanged('n')).toBeNull();
    await storage.saveGroupState('n', 'g', groupState('g', { a: 1, b: 2, c: 3 }));
    const first = (await storage.lastChanged('n'))!;
    const [files] = await gcs.client.bucket(BUCKET).getFiles({ prefix });
    const newestObject = Math.max(...files.map((f) => Date.parse(f.metadata.updated!)));
    expect(first.getTime()).toBe(newestObject);

    await clockPast(first);
    await storage.saveSnapshot('n');
    await storage.saveSnapshot('n', undefined, { snapshotId: 'named' });
    expect(await storage.lastChanged('n')).toEqual(first);
    const listedDownloads = gcs.emulator.stats().downloads;
    await storage.lastChanged('n');
    expect(gcs.emulator.stats().downloads - listedDownloads).toBe(1); // the network record only, never a body

    await storage.saveContactContent('n', 'g', 'b', 20);
    const second = (await storage.lastChanged('n'))!;
    expect(second.getTime()).toBeGreaterThan(first.getTime());
    await clockPast(second);
    await storage.deleteGroup('n', 'g');
    expect((await storage.lastChanged('n'))!.getTime()).toBeGreaterThan(second.getTime());
    await storage.close();
  });

  it('runs the scheduled job: changed networks only, one snapshot per slot however often it fires', async () => {
    const prefix = freshPrefix('job');
    const storage = newStorage({ prefix });
    await storage.saveContactContent('a', 'g', 'c', 1);
    await storage.saveContactContent('b', 'g', 'c', 1);
    await clockPast((await storage.lastChanged('b'))!, 50);
    const slot6 = new Date('2026-11-21T06:00:00Z');
    const run = (slot: Date) =>
      takeScheduledSnapshots(storage, {
        networks: 'changed',
        slot,
        maxSnapshots: 2,
        changeToleranceMs: 10,
        logger: quiet,
      });
    expect((await run(slot6)).created).toEqual([
      { networkId: 'a', snapshotId: 'slot-20261121T0600Z' },
      { networkId: 'b', snapshotId: 'slot-20261121T0600Z' },
    ]);
    await storage.saveContactContent('a', 'g', 'c', 2);
    // The 06:00 slot delivered again, after a write: still the one snapshot of that slot.
    expect(await run(slot6)).toEqual({ created: [], skipped: ['a', 'b'], pruned: [], failed: [] });
    await clockPast((await storage.lastChanged('a'))!);
    expect(await run(new Date('2026-11-21T07:00:00Z'))).toEqual({
      created: [{ networkId: 'a', snapshotId: 'slot-20261121T0700Z' }],
      skipped: ['b'],
      pruned: [],
      failed: [],
    });
    await storage.saveContactContent('a', 'g', 'c', 3);
    await clockPast((await storage.lastChanged('a'))!);
    expect(await run(new Date('2026-11-21T08:00:00Z'))).toEqual({
      created: [{ networkId: 'a', snapshotId: 'slot-20261121T0800Z' }],
      skipped: ['b'],
      pruned: [{ networkId: 'a', snapshotIds: ['slot-20261121T0600Z'] }],
      failed: [],
    });
    expect((await storage.loadSnapshot('a', 'slot-20261121T0800Z')).groups.get('g')?.contacts.get('c')?.content).toBe(
      3,
    );
    await storage.close();
  });
});
