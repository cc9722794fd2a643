/**
 * GcsStorage against the local Cloud Storage emulator through the official client: the
 * NetworkStorage conformance suite, the object layout, compare-and-set between processes, 412
 * and 429 handling, restarts and awkward ids.
 */
import { randomUUID } from 'node:crypto';
import type { Bucket, File, Storage } from '@google-cloud/storage';
import {
  CorruptDataError,
  growSet,
  InvalidArgumentError,
  StorageConflictError,
  StorageUnavailableError,
  type GcsStorageOptions,
} from 'super-spine';
import { GcsStateStore, GcsStorage } from 'super-spine/gcs';
import { HybridLogicalClock } from '../../shared/hlc';
import { runNetworkStorageConformance } from 'super-spine/testing';
import { backoffDelay, resolveRetryPolicy } from '../../shared/backends/retry';
import { startStorageEmulator, type StorageEmulator } from '../../emulators/storage';
import { createMemoryLogger } from '../helpers/emulators';
import { emulatorClient, freshPrefix, groupState, useStorageEmulator } from '../helpers/gcs';
import { describeSharedTombstones } from '../helpers/shared-tombstones';

process.env.METADATA_SERVER_DETECTION = 'none';

const MERGE = { blendMode: 'merge' as const };
const BUCKET = `gcs-storage-test-${process.pid}`;

const gcs = useStorageEmulator(BUCKET);

function newStorage(options: Partial<GcsStorageOptions> = {}): GcsStorage {
  return new GcsStorage({ bucket: BUCKET, storage: gcs.client, logger: createMemoryLogger(), ...options });
}

async function objectNames(prefix: string, bucket: Bucket = gcs.client.bucket(BUCKET)): Promise<string[]> {
  const [files] = await bucket.getFiles({ prefix });
  return files.map((f) => f.name.slice(prefix.length)).sort();
}

/**
 * A client whose uploads first await `before(objectName)`: the way to slip another writer's
 * write in between a compare-and-set's read and its write, deterministically.
 */
function clientWithUploadHook(before: (name: string) => Promise<void>): Storage {
  const hooked = emulatorClient(gcs.emulator);
  const bucketOf = hooked.bucket.bind(hooked);
  hooked.bucket = ((bucketName: string, options?: object) => {
    const bucket = bucketOf(bucketName, options);
    const fileOf = bucket.file.bind(bucket);
    bucket.file = ((fileName: string, fileOptions?: object) => {
      const file = fileOf(fileName, fileOptions);
      const save = file.save.bind(file) as (data: unknown, options?: unknown) => Promise<void>;
      file.save = (async (data: unknown, saveOptions?: unknown) => {
        await before(fileName);
        return save(data, saveOptions);
      }) as unknown as File['save'];
      return file;
    }) as Bucket['file'];
    return bucket;
  }) as Storage['bucket'];
  return hooked;
}

runNetworkStorageConformance('GcsStorage', async () => ({
  storage: newStorage({ prefix: freshPrefix('conformance') }),
}));

describe('GcsStorage settings', () => {
  it('refuses a bad bucket name, prefix or retry setting, naming the setting', () => {
    expect(() => new GcsStorage({ bucket: 'Not A Bucket!' })).toThrow(InvalidArgumentError);
    expect(() => new GcsStorage({ bucket: 'Not A Bucket!' })).toThrow(/bucket/);
    expect(() => new GcsStorage({ bucket: BUCKET, prefix: '/abs' })).toThrow(/prefix/);
    expect(() => new GcsStorage({ bucket: BUCKET, retry: { baseDelayMs: 100, maxDelayMs: 10 } })).toThrow(
      'retry.maxDelayMs cannot be less than retry.baseDelayMs',
    );
    expect(() => new GcsStorage({ bucket: BUCKET, retry: { maxAttempts: 0 } })).toThrow(/retry\.maxAttempts/);
    expect(new GcsStorage({ bucket: BUCKET, prefix: 'spine' }).prefix).toBe('spine/');
  });

  it('fails to initialize on a missing bucket with an error naming it, or creates it when asked', async () => {
    const missing = `missing-${randomUUID().slice(0, 8)}`;
    const storage = newStorage({ bucket: missing });
    await expect(storage.initialize()).rejects.toThrow(InvalidArgumentError);
    await expect(storage.initialize()).rejects.toThrow(new RegExp(`"${missing}".*does not exist`));
    expect((await gcs.client.bucket(missing).exists())[0]).toBe(false);

    const creating = newStorage({ bucket: missing, createBucketIfMissing: true });
    await creating.initialize();
    expect((await gcs.client.bucket(missing).exists())[0]).toBe(true);
    await creating.saveContactContent('n', 'g', 'c', 1);
    expect(await creating.loadContactContent('n', 'g', 'c')).toBe(1);
    await creating.close();
  });

  it('backs off with full jitter under a doubling ceiling', () => {
    const policy = resolveRetryPolicy({ baseDelayMs: 10, maxDelayMs: 50 });
    expect([1, 2, 3, 4, 5].map((retry) => backoffDelay(policy, retry, () => 0.999))).toEqual([9, 19, 39, 49, 49]);
    expect(backoffDelay(policy, 3, () => 0)).toBe(0);
  });
});

describe('GcsStorage reads at network scale', () => {
  /** Requests the emulator answered while `work` ran, and how many of them were downloads. */
  async function requestsOf(work: () => Promise<unknown>): Promise<{ requests: number; downloads: number }> {
    const before = gcs.emulator.stats();
    await work();
    const after = gcs.emulator.stats();
    return { requests: after.requests - before.requests, downloads: after.downloads - before.downloads };
  }

  it('loads a network with one listing of its groups and one download per object, and a query with one more for the index', async () => {
    const storage = newStorage({ prefix: freshPrefix('network-reads') });
    const groups = Array.from({ length: 12 }, (_, i) =>
      groupState(`g${i}`, { a: i, b: -i }, { attributes: { 'bassline.tags': [`t${i % 2}`] } }),
    );
    await storage.saveNetworkState('n', {
      groups: new Map(groups.map((g) => [g.group.id, g] as const)),
      rootGroupId: 'g0',
      currentGroupId: 'g0',
    });
    // 12 group records and 24 contacts, each an object of its own: the network record, one listing, 36 downloads.
    let loaded: Awaited<ReturnType<GcsStorage['loadNetworkState']>> = null;
    expect(await requestsOf(async () => (loaded = await storage.loadNetworkState('n')))).toEqual({
      requests: 38,
      downloads: 37,
    });
    expect([...loaded!.groups.keys()]).toEqual(groups.map((g) => g.group.id).sort());
    expect(loaded!.groups.get('g5')?.contacts.get('b')?.content).toBe(-5);
    // 6 groups tagged t1: the index, one listing of their names' range, 6 records and 12 contacts.
    let tagged: Awaited<ReturnType<GcsStorage['queryGroups']>> = [];
    expect(await requestsOf(async () => (tagged = await storage.queryGroups('n', { tags: ['t1'] })))).toEqual({
      requests: 20,
      downloads: 19,
    });
    expect(tagged.map((g) => g.group.id).sort()).toEqual(['g1', 'g11', 'g3', 'g5', 'g7', 'g9']);
    expect(tagged.find((g) => g.group.id === 'g11')?.contacts.get('a')?.content).toBe(11);
    await storage.close();
  });
});

describe('GcsStorage object layout', () => {
  it('keeps one object per record, contact and snapshot under the prefix, and a contact write touches only its contact', async () => {
    const prefix = freshPrefix('layout');
    const storage = newStorage({ prefix });
    await storage.saveContactContent('net-1', 'users/@alice', 'mood', 'happy');
    await storage.saveGroupState('net-1', 'g', groupState('g', { a: 1, b: 2 }));
    const snapshotId = await storage.saveSnapshot('net-1', 'first');

    expect(await objectNames(prefix)).toEqual(
      [
        'networks/net-1/groups/g/contacts/a.json',
        'networks/net-1/groups/g/contacts/b.json',
        'networks/net-1/groups/g/group.json',
        'networks/net-1/groups/users%2F@alice/contacts/mood.json',
        'networks/net-1/groups/users%2F@alice/group.json',
        'networks/net-1/metadata.json',
        `networks/net-1/snapshots/${snapshotId}.info.json`,
        `networks/net-1/snapshots/${snapshotId}.json`,
      ].sort(),
    );

    // Contact writes to an existing group write the contact object and nothing else.
    const before = gcs.emulator.stats().writesByObject;
    await storage.saveContactContent('net-1', 'g', 'a', 10);
    await storage.saveContactContent('net-1', 'g', 'c', 30);
    expect(gcs.writesSince(before, prefix)).toEqual({
      'networks/net-1/groups/g/contacts/a.json': 1,
      'networks/net-1/groups/g/contacts/c.json': 1,
    });

    // listSnapshots reads the small info objects only, never the snapshot bodies.
    await storage.saveSnapshot('net-1');
    const downloads = gcs.emulator.stats().downloads;
    expect(await storage.listSnapshots('net-1')).toHaveLength(2);
    expect(gcs.emulator.stats().downloads - downloads).toBe(2);

    await storage.deleteGroup('net-1', 'users/@alice');
    expect((await objectNames(prefix)).filter((n) => n.includes('users'))).toEqual([]);
    expect(await objectNames(prefix)).toContain('networks/net-1/groups/g/contacts/c.json');

    // Everything goes; DocumentStorage then leaves the network record behind as a tombstone.
    await storage.deleteNetwork('net-1');
    expect(await objectNames(prefix)).toEqual(['networks/net-1/metadata.json']);
    expect(await storage.exists('net-1')).toBe(false);
    await storage.close();
  });

  it('lists plain ids without reading records, pages through long listings and reads shortened keys', async () => {
    const prefix = freshPrefix('listing');
    const store = new GcsStateStore({ bucket: BUCKET, prefix, storage: gcs.client, listPageSize: 2 });
    await store.init();
    const now = new Date();
    const networks = ['n1', 'n2', 'n3', 'n4', 'n5'];
    for (const id of networks)
      await store.putNetwork({ id, rootGroupId: 'g0', currentGroupId: 'g0', createdAt: now, updatedAt: now });
    for (let g = 0; g < 5; g++) {
      await store.putGroup('n1', {
        group: { id: `g${g}`, name: `g${g}`, contactIds: [], wireIds: [], subgroupIds: [], boundaryContactIds: [] },
        wires: new Map(),
      });
    }
    for (let c = 0; c < 7; c++)
      await store.putContact('n1', 'g0', { id: `c${c}`, groupId: 'g0', content: c, blendMode: 'accept-last' });

    let downloads = gcs.emulator.stats().downloads;
    expect((await store.listNetworkIds()).sort()).toEqual(networks);
    expect((await store.listGroupIds('n1')).sort()).toEqual(['g0', 'g1', 'g2', 'g3', 'g4']);
    expect(gcs.emulator.stats().downloads - downloads).toBe(0);
    expect((await store.listContacts('n1', 'g0')).map((c) => c.content).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);

    const long = 'L'.repeat(1000);
    await store.putNetwork({ id: long, rootGroupId: 'g', currentGroupId: 'g', createdAt: now, updatedAt: now });
    downloads = gcs.emulator.stats().downloads;
    expect(await store.listNetworkIds()).toContain(long);
    expect(gcs.emulator.stats().downloads - downloads).toBe(1);
  });

  it('reports an undecodable object as CorruptDataError naming it', async () => {
    const prefix = freshPrefix('corrupt');
    const storage = newStorage({ prefix });
    await storage.saveContactContent('n', 'g', 'c', 'fine');
    const name = `${prefix}networks/n/groups/g/contacts/c.json`;
    await gcs.client.bucket(BUCKET).file(name).save('{not json', { resumable: false });
    const failure = storage.loadContactContent('n', 'g', 'c');
    await expect(failure).rejects.toBeInstanceOf(CorruptDataError);
    await expect(storage.loadContactContent('n', 'g', 'c')).rejects.toThrow(name);
    await storage.close();
  });

  it('hands out copies: mutating what was loaded changes nothing stored', async () => {
    const storage = newStorage({ prefix: freshPrefix('copies') });
    await storage.saveContactContent('n', 'g', 'c', { list: [1], set: new Set(['a']) });
    const first = (await storage.loadGroupState('n', 'g'))!;
    const content = first.contacts.get('c')!.content as { list: number[]; set: Set<string> };
    content.list.push(2);
    content.set.add('b');
    first.contacts.delete('c');
    expect(await storage.loadContactContent('n', 'g', 'c')).toEqual({ list: [1], set: new Set(['a']) });
    await storage.close();
  });
});

describe('GcsStorage compare-and-set', () => {
  it('loses no element when two instances with their own clients each merge 50 grow-set writes into one contact at once', async () => {
    const prefix = freshPrefix('cas');
    const a = newStorage({ prefix, storage: emulatorClient(gcs.emulator), writerId: 'writer-a' });
    const b = newStorage({ prefix, storage: emulatorClient(gcs.emulator), writerId: 'writer-b' });
    await Promise.all([a.initialize(), b.initialize()]);
    const failuresBefore = gcs.emulator.stats().preconditionFailures;

    await Promise.all([
      ...Array.from({ length: 50 }, (_, i) => a.saveContactContent('net', 'root', 'hot', growSet([`a${i}`]), MERGE)),
      ...Array.from({ length: 50 }, (_, i) => b.saveContactContent('net', 'root', 'hot', growSet([`b${i}`]), MERGE)),
    ]);

    const reader = newStorage({ prefix, storage: emulatorClient(gcs.emulator) });
    const merged = (await reader.loadContactContent('net', 'root', 'hot')) as { values: Set<string> };
    const expected = [
      ...Array.from({ length: 50 }, (_, i) => `a${i}`),
      ...Array.from({ length: 50 }, (_, i) => `b${i}`),
    ];
    expect([...merged.values].sort()).toEqual(expected.sort());
    // The two instances really did race: some writes lost the compare-and-set and were redone.
    const races = a.retryCounters().preconditionFailures + b.retryCounters().preconditionFailures;
    expect(races).toBeGreaterThan(0);
    expect(gcs.emulator.stats().preconditionFailures - failuresBefore).toBe(races);
    await Promise.all([a.close(), b.close(), reader.close()]);
  });

  it('calls the update again on the new state when another writer wrote in between (412)', async () => {
    const prefix = freshPrefix('race');
    const other = new GcsStateStore({ bucket: BUCKET, prefix, storage: emulatorClient(gcs.emulator) });
    const contactName = `${prefix}networks/n/groups/g/contacts/c.json`;
    let interfere = false;
    const store = new GcsStateStore({
      bucket: BUCKET,
      prefix,
      storage: clientWithUploadHook(async (name) => {
        if (name !== contactName || !interfere) return;
        interfere = false;
        await other.putContact('n', 'g', { id: 'c', groupId: 'g', content: ['other'], blendMode: 'accept-last' });
      }),
    });
    await Promise.all([store.init(), other.init()]);
    await store.putContact('n', 'g', { id: 'c', groupId: 'g', content: ['first'], blendMode: 'accept-last' });
    interfere = true; // the next upload of the contact: the compare-and-set's write

    const seen: unknown[] = [];
    const failuresBefore = gcs.emulator.stats().preconditionFailures;
    await store.updateContact('n', 'g', 'c', (current) => {
      seen.push(current?.content);
      return { ...current!, content: [...(current!.content as string[]), 'mine'] };
    });

    expect(seen).toEqual([['first'], ['other']]);
    expect((await store.getContact('n', 'g', 'c'))?.content).toEqual(['other', 'mine']);
    expect(store.counters.preconditionFailures).toBe(1);
    expect(gcs.emulator.stats().preconditionFailures - failuresBefore).toBe(1);
  });

  it('creates a missing contact only if nobody else created it first (ifGenerationMatch 0)', async () => {
    const prefix = freshPrefix('create');
    const other = new GcsStateStore({ bucket: BUCKET, prefix, storage: emulatorClient(gcs.emulator) });
    let interfere = true;
    const store = new GcsStateStore({
      bucket: BUCKET,
      prefix,
      storage: clientWithUploadHook(async () => {
        if (!interfere) return;
        interfere = false;
        await other.putContact('n', 'g', { id: 'c', groupId: 'g', content: 1, blendMode: 'accept-last' });
      }),
    });
    await Promise.all([store.init(), other.init()]);
    const seen: unknown[] = [];
    await store.updateContact('n', 'g', 'c', (current) => {
      seen.push(current === null ? null : current.content);
      return {
        id: 'c',
        groupId: 'g',
        content: ((current?.content as number | undefined) ?? 0) + 10,
        blendMode: 'accept-last',
      };
    });
    expect(seen).toEqual([null, 1]);
    expect((await store.getContact('n', 'g', 'c'))?.content).toBe(11);
  });

  it('gives up with StorageConflictError (CONFLICT, status 412, the object named) when every try loses the race', async () => {
    const prefix = freshPrefix('conflict');
    const other = new GcsStateStore({ bucket: BUCKET, prefix, storage: emulatorClient(gcs.emulator) });
    let rival = 0;
    const store = new GcsStateStore({
      bucket: BUCKET,
      prefix,
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      storage: clientWithUploadHook(async () => {
        await other.putContact('n', 'g', {
          id: 'c',
          groupId: 'g',
          content: `rival ${++rival}`,
          blendMode: 'accept-last',
        });
      }),
    });
    await Promise.all([store.init(), other.init()]);
    let calls = 0;
    const update = store.updateContact('n', 'g', 'c', () => {
      calls++;
      return { id: 'c', groupId: 'g', content: 'mine', blendMode: 'accept-last' };
    });
    const error = await update.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StorageConflictError);
    expect(error).toMatchObject({
      code: 'CONFLICT',
      status: 412,
      attempts: 3,
      key: `gs://${BUCKET}/${prefix}networks/n/groups/g/contacts/c.json`,
    });
    expect((error as Error).message).toMatch(/update contact "c" of group "g"/);
    expect(calls).toBe(3);
    expect((await other.getContact('n', 'g', 'c'))?.content).toBe('rival 3');
  });
});

describe('GcsStorage on transient failures (503)', () => {
  const unavailable = () => Object.assign(new Error('Service Unavailable'), { code: 503 });

  it('retries a write the service answered 503 until it goes through', async () => {
    let failures = 2;
    const store = new GcsStateStore({
      bucket: BUCKET,
      prefix: freshPrefix('unavailable'),
      retry: { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: 5 },
      storage: clientWithUploadHook(async () => {
        if (failures-- > 0) throw unavailable();
      }),
    });
    await store.init();
    const group = groupState('g', {});
    await store.putGroup('n', { group: group.group, wires: group.wires });
    expect((await store.getGroup('n', 'g'))?.group.id).toBe('g');
    expect(store.counters).toMatchObject({ transientFailures: 2, retries: 2 });
  });

  it('gives up with StorageUnavailableError (not a conflict) keeping status 503 and naming the object', async () => {
    const prefix = freshPrefix('down');
    const store = new GcsStateStore({
      bucket: BUCKET,
      prefix,
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      storage: clientWithUploadHook(async () => {
        throw unavailable();
      }),
    });
    await store.init();
    const error = await store
      .putContact('n', 'g', { id: 'c', groupId: 'g', content: 1, blendMode: 'accept-last' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(StorageUnavailableError);
    expect(error).not.toBeInstanceOf(StorageConflictError);
    expect(error).toMatchObject({
      code: 'UNAVAILABLE',
      status: 503,
      attempts: 3,
      key: `gs://${BUCKET}/${prefix}networks/n/groups/g/contacts/c.json`,
    });
    expect((error as Error).message).toMatch(/could not write .* in 3 attempts: service unavailable/);
  });
});

describe('GcsStorage under the per-object rate limit (429)', () => {
  let limited: StorageEmulator;
  let limitedClient: Storage;
  const bucket = 'rate-limited';

  beforeAll(async () => {
    // The service's limit (1 write/s per object) scaled up twentyfold, so the test stays short.
    limited = await startStorageEmulator({
      logger: createMemoryLogger(),
      objectRateLimit: { writesPerSecond: 20, burst: 2 },
    });
    limitedClient = emulatorClient(limited);
    await limitedClient.createBucket(bucket);
  });

  afterAll(async () => {
    await limited?.stop();
  });

  it('retries with backoff until a burst of writes to one contact, and of one group, all succeed', async () => {
    const storage = new GcsStorage({
      bucket,
      storage: limitedClient,
      prefix: freshPrefix('burst'),
      logger: createMemoryLogger(),
      retry: { maxAttempts: 40, baseDelayMs: 10, maxDelayMs: 200 },
    });
    await storage.initialize();
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => storage.saveContactContent('n', 'g', 'hot', growSet([i]), MERGE)),
    );
    await Promise.all(
      Array.from({ length: 5 }, (_, i) => storage.saveGroupState('n', 'other', groupState('other', { x: i }))),
    );

    const merged = (await storage.loadContactContent('n', 'g', 'hot')) as { values: Set<number> };
    expect([...merged.values].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(await storage.loadContactContent('n', 'other', 'x')).toEqual(expect.any(Number));
    const counters = storage.retryCounters();
    expect(counters.rateLimited).toBeGreaterThan(0);
    expect(counters.rateLimited).toBe(limited.stats().rateLimited);
    await storage.close();
  });

  it('gives up with StorageUnavailableError keeping status 429 when the retries run out', async () => {
    // One write per object, then none for a long while.
    const strict = await startStorageEmulator({
      logger: createMemoryLogger(),
      objectRateLimit: { writesPerSecond: 0.001, burst: 1 },
    });
    try {
      const strictClient = emulatorClient(strict);
      await strictClient.createBucket(bucket);
      const storage = new GcsStorage({
        bucket,
        storage: strictClient,
        logger: createMemoryLogger(),
        retry: { maxAttempts: 2, baseDelayMs: 0, maxDelayMs: 0 },
      });
      await storage.saveContactContent('n', 'g', 'c', 1);
      const error = await storage.saveContactContent('n', 'g', 'c', 2).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StorageUnavailableError);
      expect(error).toMatchObject({
        code: 'UNAVAILABLE',
        status: 429,
        attempts: 2,
        key: `gs://${bucket}/networks/n/groups/g/contacts/c.json`,
      });
      expect((error as Error).message).toMatch(/rate limited/);
      expect(strict.stats().rateLimited).toBe(2);
      expect(await storage.loadContactContent('n', 'g', 'c')).toBe(1);
      await storage.close();
    } finally {
      await strict.stop();
    }
  });
});

describe('GcsStorage persistence and ids', () => {
  it('shows a new instance on the same bucket and prefix everything an earlier one wrote', async () => {
    const prefix = freshPrefix('restart');
    const first = newStorage({ prefix, storage: emulatorClient(gcs.emulator) });
    await first.saveNetworkState('net', {
      groups: new Map([
        ['root', groupState('root', { x: new Map([[1, new Date(0)]]) })],
        ['root/sub', groupState('root/sub', { y: growSet(['a']) })],
      ]),
      rootGroupId: 'root',
      currentGroupId: 'root/sub',
    });
    const snapshotId = await first.saveSnapshot('net', 'before restart');
    const written = await first.loadNetworkState('net');
    await first.close();

    const second = newStorage({ prefix, storage: emulatorClient(gcs.emulator) });
    expect(await second.listNetworks()).toEqual(['net']);
    expect(await second.loadNetworkState('net')).toEqual(written);
    expect((await second.listSnapshots('net')).map((s) => [s.id, s.label])).toEqual([[snapshotId, 'before restart']]);
    expect(await second.loadSnapshot('net', snapshotId)).toEqual(written);
    await second.close();
  });

  it('stores ids with %, unicode and 1000 characters distinctly and lists them back exactly', async () => {
    const prefix = freshPrefix('ids');
    const storage = newStorage({ prefix });
    const networks = ['100%-sure', 'ünïcødé 🚀 net', 'n'.repeat(1000)];
    const groups = ['a/b', 'a%2Fb', 'a%252Fb', `${'g'.repeat(600)}/${'é'.repeat(200)}`];
    const contacts = ['%', 'c%41', 'cA', '🙂'.repeat(250)];
    for (const n of networks) {
      for (const g of groups) {
        for (const c of contacts) await storage.saveContactContent(n, g, c, `${n.length}:${g}:${c}`);
      }
    }

    const reopened = newStorage({ prefix, storage: emulatorClient(gcs.emulator) });
    expect(await reopened.listNetworks()).toEqual([...networks].sort());
    for (const n of networks) {
      const state = await reopened.loadNetworkState(n);
      expect([...(state?.groups.keys() ?? [])]).toEqual([...groups].sort());
      for (const g of groups) {
        expect([...(state?.groups.get(g)?.contacts.keys() ?? [])].sort()).toEqual([...contacts].sort());
        for (const c of contacts) expect(await reopened.loadContactContent(n, g, c)).toBe(`${n.length}:${g}:${c}`);
      }
    }
    const names = await objectNames(prefix);
    expect(names).toHaveLength(networks.length * (1 + groups.length * (1 + contacts.length)));
    expect(Math.max(...names.map((name) => Buffer.byteLength(prefix + name)))).toBeLessThanOrEqual(1024);
    await Promise.all([storage.close(), reopened.close()]);
  });
});

describe('GcsStorage record cache', () => {
  const MERGE_WRITE = { blendMode: 'merge' as const };
  let seq = 0;
  const writeOf = (clock: HybridLogicalClock, content: unknown) => ({
    content,
    stamp: clock.tick(),
    writerId: 'cache-test',
    seq: ++seq,
    ...MERGE_WRITE,
  });
  const itemsOf = async (storage: GcsStorage, network: string, group: string, contact: string) =>
    [
      ...(((await storage.loadContactContent(network, group, contact)) as { values: Set<string> } | null)?.values ??
        []),
    ].sort();

  it('applies the next batch to a group from the records it read or wrote last, without downloading them', async () => {
    const storage = newStorage({ prefix: freshPrefix('cache') });
    const clock = new HybridLogicalClock('cache-test');
    await storage.applyContactWriteBatch('n', 'g', [{ contactId: 'c', write: writeOf(clock, growSet(['a'])) }]);
    const downloadsBefore = gcs.emulator.stats().downloads;
    const cachedBefore = storage.retryCounters().cachedReads;
    await storage.applyContactWriteBatch('n', 'g', [
      { contactId: 'c', write: writeOf(clock, growSet(['b'])) },
      { contactId: 'd', write: writeOf(clock, growSet(['x'])) },
    ]);
    expect(gcs.emulator.stats().downloads - downloadsBefore).toBe(0);
    expect(storage.retryCounters().cachedReads - cachedBefore).toBeGreaterThanOrEqual(3);
    expect(await itemsOf(storage, 'n', 'g', 'c')).toEqual(['a', 'b']);
    await storage.close();
  });

  it('loses no write when another instance wrote the group since it was cached: the compare-and-set reads it again', async () => {
    const prefix = freshPrefix('cache-race');
    const first = newStorage({ prefix });
    const second = newStorage({ prefix, storage: emulatorClient(gcs.emulator) });
    const clock = new HybridLogicalClock('cache-test');
    await first.applyContactWriteBatch('n', 'g', [{ contactId: 'c', write: writeOf(clock, growSet(['first-1'])) }]);
    await second.applyContactWriteBatch('n', 'g', [{ contactId: 'c', write: writeOf(clock, growSet(['second'])) }]);
    const conflictsBefore = first.retryCounters().preconditionFailures;
    await first.applyContactWriteBatch('n', 'g', [{ contactId: 'c', write: writeOf(clock, growSet(['first-2'])) }]);
    expect(first.retryCounters().preconditionFailures - conflictsBefore).toBe(1);
    expect(await itemsOf(second, 'n', 'g', 'c')).toEqual(['first-1', 'first-2', 'second']);
    await Promise.all([first.close(), second.close()]);
  });

  it('sees a delete made by another instance since it cached the records: an older batch stays deleted, a newer one recreates the group', async () => {
    const prefix = freshPrefix('cache-delete');
    const first = newStorage({ prefix });
    const second = newStorage({ prefix, storage: emulatorClient(gcs.emulator) });
    const clock = new HybridLogicalClock('cache-test');
    await first.applyContactWriteBatch('n', 'g', [{ contactId: 'c', write: writeOf(clock, growSet(['before'])) }]);
    await first.applyContactWriteBatch('n', 'keep', [{ contactId: 'c', write: writeOf(clock, growSet(['kept'])) }]);
    const older = writeOf(clock, growSet(['older than the delete']));
    await second.deleteGroup('n', 'g');
    const outcomes = await first.applyContactWriteBatch('n', 'g', [{ contactId: 'c', write: older }]);
    expect(outcomes[0]!.superseded).toBe(true);
    expect(await second.loadGroupState('n', 'g')).toBeNull();
    await first.applyContactWriteBatch('n', 'g', [
      {
        contactId: 'c',
        write: {
          ...writeOf(clock, growSet(['after'])),
          stamp: new HybridLogicalClock('later', () => Date.now() + 1000).tick(),
        },
      },
    ]);
    expect(await itemsOf(second, 'n', 'g', 'c')).toEqual(['after']);
    await Promise.all([first.close(), second.close()]);
  });

  it('reads only the contacts of the batch that are stored on their own, and blends onto them', async () => {
    const storage = newStorage({ prefix: freshPrefix('cache-singles') });
    const clock = new HybridLogicalClock('cache-test');
    for (let i = 0; i < 5; i++) await storage.saveContactContent('n', 'g', `single-${i}`, growSet([`own-${i}`]), MERGE);
    const downloadsBefore = gcs.emulator.stats().downloads;
    await storage.applyContactWriteBatch('n', 'g', [
      { contactId: 'single-3', write: writeOf(clock, growSet(['packed'])) },
    ]);
    // The records are cached from the lone writes: only the one contact of the batch is downloaded.
    expect(gcs.emulator.stats().downloads - downloadsBefore).toBe(1);
    expect(await itemsOf(storage, 'n', 'g', 'single-3')).toEqual(['own-3', 'packed']);
    expect(await itemsOf(storage, 'n', 'g', 'single-4')).toEqual(['own-4']);
    await storage.close();
  });

  it('keeps no records when recordCacheBytes is 0, and refuses a bad value', async () => {
    expect(() => newStorage({ recordCacheBytes: -1 })).toThrow(/recordCacheBytes must be a whole number/);
    const storage = newStorage({ prefix: freshPrefix('no-cache'), recordCacheBytes: 0 });
    const clock = new HybridLogicalClock('cache-test');
    for (let i = 0; i < 3; i++)
      await storage.applyContactWriteBatch('n', 'g', [{ contactId: 'c', write: writeOf(clock, growSet([`v${i}`])) }]);
    expect(storage.retryCounters().cachedReads).toBe(0);
    expect(await itemsOf(storage, 'n', 'g', 'c')).toEqual(['v0', 'v1', 'v2']);
    await storage.close();
  });
});

describe('GcsStorage shared between instances', () => {
  describeSharedTombstones('gcs, generation compare-and-set', async () => {
    const prefix = freshPrefix('tombstones');
    const [first, second] = [newStorage({ prefix }), newStorage({ prefix, storage: emulatorClient(gcs.emulator) })];
    return { first, second, close: async () => void (await Promise.all([first.close(), second.close()])) };
  });
});
