import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  CachedStorage,
  createStorage,
  FileSystemStorage,
  InvalidArgumentError,
  MemoryStorage,
  ScheduledPersistence,
  type NetworkStorage,
  type StorageConfig,
} from 'super-spine';
import { GcsStorage } from 'super-spine/gcs';
import { PostgresStorage } from 'super-spine/postgres';
import { RemoteStorage } from 'super-spine/remote';
import { SpineStorage } from 'super-spine/mesh';
import { eventually, runNetworkStorageConformance } from 'super-spine/testing';

/** A MemoryStorage that counts the reads that reach it. */
class CountingMemoryStorage extends MemoryStorage {
  reads = 0;
  override async loadContactContent(networkId: string, groupId: string, contactId: string) {
    this.reads += 1;
    return super.loadContactContent(networkId, groupId, contactId);
  }
  override async loadGroupState(networkId: string, groupId: string) {
    this.reads += 1;
    return super.loadGroupState(networkId, groupId);
  }
  override async loadNetworkState(networkId: string) {
    this.reads += 1;
    return super.loadNetworkState(networkId);
  }
}

function refusal(config: unknown, env: Record<string, string | undefined> = {}): string {
  try {
    createStorage(config as StorageConfig, env);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as Error).message;
  }
  throw new Error('the config was accepted');
}

describe('createStorage validates the config once, naming the field', () => {
  it.each([
    [{}, /type must be one of memory \| filesystem \| postgres \| gcs \| mesh \| remote, not undefined/],
    [{ type: 'redis' }, /type must be one of .* not "redis"/],
    [{ type: 'filesystem' }, /options\.basePath: required when SUPER_SPINE_STORAGE_PATH is not set/],
    [
      { type: 'postgres', options: { connectionString: 'mysql://x' } },
      /options\.connectionString: must start with postgresql:\/\//,
    ],
    [{ type: 'postgres' }, /options: /],
    [{ type: 'gcs', options: {} }, /options\.bucket: /],
    [{ type: 'remote', options: { url: 'ftp://gateway', apiKey: 'k' } }, /options\.url: /],
    [{ type: 'remote', options: { url: 'http://gateway' } }, /options\.apiKey: /],
    [{ type: 'memory', cache: { enabled: true, ttl: -5 } }, /cache\.ttl: /],
    [{ type: 'memory', cache: { ttl: 5 } }, /cache\.enabled: /],
    [
      { type: 'memory', cache: { enabled: false, maxSize: 5 } },
      /cache\.enabled: is false, so ttl and maxSize would do nothing/,
    ],
    [{ type: 'memory', cache: { enabled: true, maxSize: 1.5 } }, /cache\.maxSize: /],
    [
      { type: 'memory', persistence: { autoSave: true } },
      /persistence\.autoSave: memory keeps nothing beyond the process/,
    ],
    [
      { type: 'memory', persistence: { saveInterval: 1000 } },
      /persistence\.saveInterval: only types 'mesh' and 'remote'/,
    ],
    [{ type: 'memory', persistence: { snapshotInterval: 0 } }, /persistence\.snapshotInterval: /],
    [{ type: 'memory', colour: 'blue' }, /colour/],
  ])('%j is refused', (config, message) => {
    expect(refusal(config)).toMatch(message);
  });
});

describe('createStorage builds each backend', () => {
  const made: NetworkStorage[] = [];
  const make = (config: StorageConfig, env: Record<string, string | undefined> = {}) => {
    const storage = createStorage(config, env);
    made.push(storage);
    return storage;
  };
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'spine-create-'));
  });
  afterAll(async () => {
    await Promise.all(made.map((s) => s.close().catch(() => undefined)));
    await rm(dir, { recursive: true, force: true });
  });

  it('memory', () => {
    expect(make({ type: 'memory' })).toBeInstanceOf(MemoryStorage);
  });

  it('filesystem in SUPER_SPINE_STORAGE_PATH by default, or options.basePath', async () => {
    const fromEnv = make({ type: 'filesystem' }, { SUPER_SPINE_STORAGE_PATH: path.join(dir, 'env') });
    expect(fromEnv).toBeInstanceOf(FileSystemStorage);
    await fromEnv.initialize();
    await fromEnv.saveContactContent('n', 'g', 'c', 1);
    const again = new FileSystemStorage({ basePath: path.join(dir, 'env') });
    expect(await again.loadContactContent('n', 'g', 'c')).toBe(1);
    await again.close();
    expect(
      make(
        { type: 'filesystem', options: { basePath: path.join(dir, 'given') } },
        { SUPER_SPINE_STORAGE_PATH: path.join(dir, 'env') },
      ),
    ).toBeInstanceOf(FileSystemStorage);
  });

  it('postgres, gcs, mesh and remote (constructed, not connected)', () => {
    expect(
      make({ type: 'postgres', options: { connectionString: 'postgresql://spine@127.0.0.1:1/spine' } }),
    ).toBeInstanceOf(PostgresStorage);
    expect(make({ type: 'gcs', options: { bucket: 'spine-state', apiEndpoint: 'http://127.0.0.1:1' } })).toBeInstanceOf(
      GcsStorage,
    );
    expect(
      make({
        type: 'mesh',
        options: { env: { PUBSUB_EMULATOR_HOST: '127.0.0.1:1', STORAGE_EMULATOR_HOST: 'http://127.0.0.1:1' } },
      }),
    ).toBeInstanceOf(SpineStorage);
    expect(make({ type: 'remote', options: { url: 'http://127.0.0.1:1', apiKey: 'ssk_x' } })).toBeInstanceOf(
      RemoteStorage,
    );
  });

  it('wraps in the read cache and the persistence timers when asked', () => {
    const cached = make({ type: 'memory', cache: { enabled: true, ttl: 1000, maxSize: 10 } });
    expect(cached).toBeInstanceOf(CachedStorage);
    expect((cached as CachedStorage).inner).toBeInstanceOf(MemoryStorage);
    expect(make({ type: 'memory', cache: { enabled: false } })).toBeInstanceOf(MemoryStorage);
    const scheduled = make({ type: 'memory', cache: { enabled: true }, persistence: { snapshotInterval: 60_000 } });
    expect(scheduled).toBeInstanceOf(ScheduledPersistence);
    expect((scheduled as ScheduledPersistence).inner).toBeInstanceOf(CachedStorage);
  });

  it('takes a snapshot of each written network every snapshotInterval', async () => {
    const storage = make({ type: 'memory', persistence: { snapshotInterval: 30 } }) as ScheduledPersistence;
    await storage.initialize();
    await storage.saveContactContent('written', 'g', 'c', 1);
    await eventually(async () =>
      expect((await storage.listSnapshots('written')).map((s) => s.label)).toEqual(['scheduled']),
    );
    // Nothing written since: no second snapshot, however many intervals pass.
    const taken = storage.snapshotsTaken;
    await storage.saveContactContent('other', 'g', 'c', 1);
    await eventually(async () => expect(await storage.listSnapshots('other')).toHaveLength(1));
    expect(await storage.listSnapshots('written')).toHaveLength(1);
    expect(storage.snapshotsTaken).toBe(taken + 1);
  });
});

runNetworkStorageConformance('CachedStorage (MemoryStorage behind it)', async () => ({
  storage: new CachedStorage(new MemoryStorage()),
}));

describe('the read cache', () => {
  let backing: CountingMemoryStorage;
  let cache: CachedStorage;
  beforeEach(async () => {
    backing = new CountingMemoryStorage();
    cache = new CachedStorage(backing, { ttl: 60_000, maxSize: 100 });
    await cache.initialize();
    await backing.saveContactContent('n', 'g', 'c', 'v0');
  });
  afterEach(() => cache.close());

  it('serves repeated reads from memory', async () => {
    expect(await cache.loadContactContent('n', 'g', 'c')).toBe('v0');
    const after = backing.reads;
    for (let i = 0; i < 10; i++) expect(await cache.loadContactContent('n', 'g', 'c')).toBe('v0');
    await cache.loadGroupState('n', 'g');
    await cache.loadGroupState('n', 'g');
    await cache.loadNetworkState('n');
    await cache.loadNetworkState('n');
    expect(backing.reads).toBe(after + 2);
    expect(cache.stats()).toMatchObject({ hits: 12, misses: 3, watchedNetworks: 1 });
  });

  it('never returns a value older than a change its subscriber was told about', async () => {
    const readInCallback: unknown[] = [];
    // Subscribed before the cache watches the network, so this callback is called before the cache's own watch hears of a change.
    const unsubscribe = await cache.subscribe('n/g', async (state) => {
      readInCallback.push([state?.contacts.get('c')?.content, await cache.loadContactContent('n', 'g', 'c')]);
    });
    await cache.loadContactContent('n', 'g', 'c');
    for (let i = 1; i <= 20; i++) {
      // Another writer, behind the cache's back.
      await backing.saveContactContent('n', 'g', 'c', `v${i}`);
      await cache.loadContactContent('n', 'g', 'c');
    }
    await eventually(() => expect(readInCallback).toHaveLength(20));
    for (const [told, read] of readInCallback as Array<[string, string]>)
      expect(Number(read.slice(1))).toBeGreaterThanOrEqual(Number(told.slice(1)));
    await unsubscribe();
  });

  it('drops a network on changes made by other writers, without any subscriber of its own', async () => {
    expect(await cache.loadGroupState('n', 'g')).not.toBeNull();
    await backing.saveContactContent('n', 'g', 'c', 'other-writer');
    await eventually(async () =>
      expect((await cache.loadGroupState('n', 'g'))?.contacts.get('c')?.content).toBe('other-writer'),
    );
  });

  it('sees its own writes at once', async () => {
    expect(await cache.loadContactContent('n', 'g', 'c')).toBe('v0');
    await cache.saveContactContent('n', 'g', 'c', 'mine');
    expect(await cache.loadContactContent('n', 'g', 'c')).toBe('mine');
    await cache.deleteNetwork('n');
    expect(await cache.loadContactContent('n', 'g', 'c')).toBeNull();
  });

  it('hands out copies: changing what a read returned does not change the next read', async () => {
    const state = (await cache.loadGroupState('n', 'g'))!;
    state.contacts.clear();
    expect((await cache.loadGroupState('n', 'g'))!.contacts.get('c')?.content).toBe('v0');
  });

  it('keeps at most maxSize entries and forgets them after ttl', async () => {
    const small = new CachedStorage(backing, { maxSize: 2, ttl: 200 });
    for (const contact of ['a', 'b', 'c']) await small.loadContactContent('n', 'g', contact);
    const before = backing.reads;
    await small.loadContactContent('n', 'g', 'c');
    expect(backing.reads).toBe(before);
    await small.loadContactContent('n', 'g', 'a');
    expect(backing.reads).toBe(before + 1);
    const cachedAt = performance.now();
    await eventually(async () => {
      const reads = backing.reads;
      await small.loadContactContent('n', 'g', 'a');
      expect(backing.reads).toBe(reads + 1);
    });
    expect(performance.now() - cachedAt).toBeGreaterThanOrEqual(150);
    await small.close();
  });
});
