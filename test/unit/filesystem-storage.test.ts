import { spawn } from 'node:child_process';
import { promises as fs, readFileSync, watch, type FSWatcher } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CorruptDataError,
  decode,
  DocumentStorage,
  FileSystemStorage,
  MemoryStateStore,
  InvalidArgumentError,
  StorageUnavailableError,
  growSet,
  type GroupState,
  type NetworkState,
} from 'super-spine';
import { encode as encodeRecord } from '../../shared/codec';
import { formatStamp } from '../../shared/hlc';
import { idToKey } from '../../shared/ids';
import { describeSharedTombstones } from '../helpers/shared-tombstones';

// The child loads the same library as this test, through tsx's loader.
const SHARED_INDEX = require.resolve('super-spine');
const TSX_LOADER = pathToFileURL(require.resolve('tsx')).href;

let outer: string;
let basePath: string;
const open: FileSystemStorage[] = [];

beforeEach(async () => {
  // basePath lives inside a folder of its own, so the test can prove nothing was written beside it.
  outer = await fs.mkdtemp(path.join(os.tmpdir(), 'spine-fs-unit-'));
  basePath = path.join(outer, 'base');
});

afterEach(async () => {
  for (const storage of open.splice(0)) await storage.close();
  await fs.rm(outer, { recursive: true, force: true });
});

function storage(options: { writerId?: string; fsync?: boolean } = {}): FileSystemStorage {
  const instance = new FileSystemStorage({ basePath, ...options });
  open.push(instance);
  return instance;
}

/** Every file and folder under `dir`, as paths relative to it with "/" separators, hidden ones included. */
async function walk(dir: string, prefix = ''): Promise<{ files: string[]; dirs: string[] }> {
  const files: string[] = [];
  const dirs: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      dirs.push(relative);
      const inner = await walk(path.join(dir, entry.name), relative);
      files.push(...inner.files);
      dirs.push(...inner.dirs);
    } else {
      files.push(relative);
    }
  }
  return { files: files.sort(), dirs: dirs.sort() };
}

function groupState(groupId: string, contacts: Record<string, unknown>, parentId?: string): GroupState {
  return {
    group: {
      id: groupId,
      name: `group ${groupId}`,
      contactIds: Object.keys(contacts),
      wireIds: [],
      subgroupIds: [],
      boundaryContactIds: [],
      ...(parentId ? { parentId } : {}),
    },
    contacts: new Map(
      Object.entries(contacts).map(([id, content]) => [
        id,
        { id, groupId, blendMode: 'accept-last' as const, content },
      ]),
    ),
    wires: new Map(),
  };
}

describe('FileSystemStorage on disk', () => {
  it('uses the documented layout, with ids encoded by idToKey', async () => {
    const s = storage();
    const network: NetworkState = {
      groups: new Map([
        ['root', groupState('root', { greeting: 'hello' })],
        ['users/@alice', groupState('users/@alice', { inbox: new Map([['k', 1]]), 'a.b': 2 }, 'root')],
      ]),
      rootGroupId: 'root',
      currentGroupId: 'users/@alice',
    };
    await s.saveNetworkState('netA', network);
    const snapshotId = await s.saveSnapshot('netA', 'first');

    const { files } = await walk(basePath);
    const net = `networks/${idToKey('netA')}`;
    const alice = `${net}/groups/${idToKey('users/@alice')}`;
    expect(files).toEqual(
      [
        `${net}/metadata.json`,
        `${net}/groups/root/group.json`,
        `${net}/groups/root/contacts/greeting.json`,
        `${alice}/group.json`,
        `${alice}/contacts/inbox.json`,
        `${alice}/contacts/${idToKey('a.b')}.json`,
        `${net}/snapshots/${idToKey(snapshotId)}.json`,
        `${net}/snapshots/${idToKey(snapshotId)}.info.json`,
      ].sort(),
    );
    expect(alice).toBe('networks/netA/groups/users%2F@alice');

    // The files hold what their names say, in the codec's encoding.
    const metadata = decode<{ id: string; rootGroupId: string; currentGroupId: string; createdAt: Date }>(
      await fs.readFile(path.join(basePath, net, 'metadata.json'), 'utf8'),
    );
    expect(metadata).toMatchObject({ id: 'netA', rootGroupId: 'root', currentGroupId: 'users/@alice' });
    expect(metadata.createdAt).toBeInstanceOf(Date);
    const group = decode<{ group: { id: string; parentId: string }; wires: Map<string, unknown> }>(
      await fs.readFile(path.join(basePath, alice, 'group.json'), 'utf8'),
    );
    expect(group.group).toMatchObject({ id: 'users/@alice', parentId: 'root' });
    expect(group.wires).toBeInstanceOf(Map);
    const inbox = decode<{ id: string; content: Map<string, number> }>(
      await fs.readFile(path.join(basePath, alice, 'contacts/inbox.json'), 'utf8'),
    );
    expect(inbox).toMatchObject({ id: 'inbox', groupId: 'users/@alice', content: new Map([['k', 1]]) });
    const info = decode<{ id: string; label: string; size: number }>(
      await fs.readFile(path.join(basePath, net, 'snapshots', `${idToKey(snapshotId)}.info.json`), 'utf8'),
    );
    expect(info).toMatchObject({ id: snapshotId, networkId: 'netA', label: 'first' });
    const payload = await fs.readFile(path.join(basePath, net, 'snapshots', `${idToKey(snapshotId)}.json`), 'utf8');
    expect(info.size).toBe(Buffer.byteLength(payload));
    expect(decode<NetworkState>(payload).groups.get('root')!.contacts.get('greeting')!.content).toBe('hello');
  });

  it('keeps hostile ids inside basePath, one folder level per id', async () => {
    const s = storage();
    const hostile = {
      network: '..%2F..%2Fetc.🐢',
      groups: ['%2E%2E/...', 'ü/ñ/🐢/...x', '.hidden/.x', 'a'.repeat(1000), '\\..\\..\\windows'],
      contacts: ['..%2F', '.x', '.'.repeat(3), 'é'.repeat(500), '%', 'c'.repeat(1000), 'con.json'],
    };
    for (const groupId of hostile.groups) {
      for (const contactId of hostile.contacts)
        await s.saveContactContent(hostile.network, groupId, contactId, `${groupId}|${contactId}`);
    }
    await s.saveSnapshot(hostile.network);

    expect(await fs.readdir(outer)).toEqual(['base']);
    const { files, dirs } = await walk(basePath);
    expect(files).toHaveLength(1 + hostile.groups.length * (1 + hostile.contacts.length) + 2);
    const layout =
      /^networks\/[A-Za-z0-9_@%~-]+\/(metadata\.json|groups\/[A-Za-z0-9_@%~-]+\/(group\.json|contacts\/[A-Za-z0-9_@%~-]+\.json)|snapshots\/[A-Za-z0-9_@%~-]+\.(info\.)?json)$/;
    for (const file of files) {
      expect(file).toMatch(layout);
      const resolved = path.resolve(basePath, file);
      expect(resolved.startsWith(basePath + path.sep)).toBe(true);
      for (const part of file.split('/')) expect(Buffer.byteLength(part)).toBeLessThanOrEqual(255);
    }
    for (const dir of dirs)
      expect(dir.split('/').every((part) => part !== '.' && part !== '..' && !part.startsWith('.'))).toBe(true);

    // And every id reads back as itself.
    for (const groupId of hostile.groups) {
      const state = await s.loadGroupState(hostile.network, groupId);
      expect([...state!.contacts.keys()].sort()).toEqual([...hostile.contacts].sort());
      for (const contactId of hostile.contacts)
        expect(await s.loadContactContent(hostile.network, groupId, contactId)).toBe(`${groupId}|${contactId}`);
    }
    expect(await s.listNetworks()).toEqual([hostile.network]);
  });

  it('keeps its state across a restart on the same basePath', async () => {
    const first = storage({ writerId: 'first' });
    await first.saveContactContent('net', 'g', 'tags', growSet(['a']), { blendMode: 'merge' });
    await first.saveContactContent('net', 'g', 'latest', 1);
    await first.saveGroupState('net', 'other', groupState('other', { x: new Date(5) }));
    const snapshotId = await first.saveSnapshot('net', 'before restart');
    const before = await first.loadNetworkState('net');
    await first.close();

    const second = storage({ writerId: 'second' });
    await second.initialize();
    expect(await second.listNetworks()).toEqual(['net']);
    expect(await second.loadNetworkState('net')).toEqual(before);
    expect((await second.listSnapshots('net')).map((i) => [i.id, i.label])).toEqual([[snapshotId, 'before restart']]);
    expect(await second.loadSnapshot('net', snapshotId)).toEqual(before);
    expect(await second.loadContactContent('net', 'other', 'x')).toEqual(new Date(5));

    // Blending continues from what is on disk.
    await second.saveContactContent('net', 'g', 'tags', growSet(['b']));
    expect(await second.loadContactContent('net', 'g', 'tags')).toEqual(growSet(['a', 'b']));
    await second.saveContactContent('net', 'g', 'latest', 2);
    expect(await second.loadContactContent('net', 'g', 'latest')).toBe(2);
  });

  describe('leftovers of a crash', () => {
    async function plantLeftovers(): Promise<string[]> {
      const contacts = path.join(basePath, 'networks/net/groups/g/contacts');
      const planted = [
        path.join(contacts, '.c.json.abc123.tmp'),
        path.join(contacts, '.new.json.def456.tmp'),
        path.join(basePath, 'networks/net/groups/g/.group.json.0a0b0c.tmp'),
        path.join(basePath, 'networks/.trash-0123456789ab/groups/x/group.json'),
        path.join(basePath, 'networks/net/groups/.trash-abcdefabcdef/contacts/c.json'),
        path.join(basePath, 'networks/net/.metadata.json.ffeedd.tmp'),
      ];
      for (const file of planted) {
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.writeFile(file, '{"partial": ');
      }
      return planted;
    }

    async function seed(): Promise<GroupState> {
      const s = storage();
      await s.saveContactContent('net', 'g', 'c', 'kept');
      const state = (await s.loadGroupState('net', 'g'))!;
      await s.close();
      return state;
    }

    it('are ignored by reads', async () => {
      const state = await seed();
      await plantLeftovers();
      const s = storage();
      expect(await s.listNetworks()).toEqual(['net']);
      expect(await s.loadGroupState('net', 'g')).toEqual(state);
      expect(await s.loadContactContent('net', 'g', 'new')).toBeNull();
      expect([...(await s.loadNetworkState('net'))!.groups.keys()]).toEqual(['g']);
    });

    it('are swept from networks/ on initialize()', async () => {
      await seed();
      await plantLeftovers();
      await storage().initialize();
      expect(await fs.readdir(path.join(basePath, 'networks'))).toEqual(['net']);
    });

    it('are swept everywhere under basePath on initialize()', async () => {
      await seed();
      await plantLeftovers();
      await storage().initialize();
      const { files, dirs } = await walk(basePath);
      const hidden = [...files, ...dirs].filter((p) => p.split('/').some((part) => part.startsWith('.')));
      expect(hidden).toEqual([]);
    });
  });

  it('reports a corrupt file with CorruptDataError naming the file', async () => {
    const s = storage();
    await s.saveContactContent('net', 'g', 'c', 1);
    await s.saveContactContent('net', 'g', 'broken', 2);
    const file = path.join(basePath, 'networks/net/groups/g/contacts/broken.json');
    await fs.writeFile(file, '{"id":"broken","groupId":"g","content":');

    const error = await s.loadGroupState('net', 'g').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CorruptDataError);
    expect((error as Error).message).toContain(path.join('networks', 'net', 'groups', 'g', 'contacts', 'broken.json'));
    await expect(s.loadContactContent('net', 'g', 'broken')).rejects.toThrow(CorruptDataError);
    // Other files stay readable.
    expect(await s.loadContactContent('net', 'g', 'c')).toBe(1);

    await fs.writeFile(path.join(basePath, 'networks/net/metadata.json'), '{"$type":"Nonsense"}');
    await expect(s.exists('net')).rejects.toThrow(/networks[/\\]net[/\\]metadata\.json/);
  });

  it('never leaves a half-written file when the writing process is killed', async () => {
    // A child process writes big contents to contacts of several groups, for ever. Once it has
    // made progress, the parent watches the contact folders and SIGKILLs the child at the first
    // change it sees, so the kill lands while a write is under way.
    const groups = ['g0', 'g1', 'g2', 'g3'];
    const script = path.join(outer, 'writer.ts');
    await fs.writeFile(
      script,
      `
      import { FileSystemStorage } from ${JSON.stringify(SHARED_INDEX)};
      const storage = new FileSystemStorage({ basePath: ${JSON.stringify(basePath)}, writerId: 'child' });
      const big = (round: number, i: number) => ({ round, i, blob: String(round).padEnd(200_000, 'x'), set: new Set([round, i]) });
      (async () => {
        await storage.initialize();
        for (let round = 1; ; round++) {
          await Promise.all(Array.from({ length: 8 }, (_, i) => storage.saveContactContent('net', 'g' + (i % 4), 'c' + i, big(round, i))));
          process.stdout.write('round ' + round + '\\n');
        }
      })();
      `,
    );

    /** Runs the writer until it is killed mid-write; returns how many rounds it finished. */
    const crashOnce = () =>
      new Promise<number>((resolve, reject) => {
        const watchers: FSWatcher[] = [];
        const child = spawn(process.execPath, ['--import', TSX_LOADER, script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        let stderr = '';
        let killed = false;
        const kill = () => {
          if (killed) return;
          killed = true;
          child.kill('SIGKILL');
        };
        const deadline = setTimeout(() => {
          kill();
          reject(new Error(`the writer made no progress in time; stderr: ${stderr}`));
        }, 30_000);
        const roundsDone = () => (output.match(/round \d+\n/g) ?? []).length;
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (watchers.length > 0 || roundsDone() < 3) return;
          for (const group of groups) {
            watchers.push(
              // Any change is a write beginning: a temp file created, or a file written in place.
              watch(path.join(basePath, 'networks/net/groups', group, 'contacts'), kill),
            );
          }
        });
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('exit', (_code, signal) => {
          clearTimeout(deadline);
          for (const watcher of watchers) watcher.close();
          if (signal === 'SIGKILL' && killed) resolve(roundsDone());
          else reject(new Error(`the writer exited on its own (signal ${signal}); stderr: ${stderr}`));
        });
      });

    const isHidden = (file: string) => file.split('/').some((part) => part.startsWith('.'));
    let cutOffWrites = 0;
    // The kill usually lands while a temp file is open; a few attempts make that certain.
    for (let attempt = 0; attempt < 5 && cutOffWrites === 0; attempt++) {
      const hiddenBefore = new Set(
        (await walk(basePath).catch(() => ({ files: [] as string[] }))).files.filter(isHidden),
      );
      const rounds = await crashOnce();
      expect(rounds).toBeGreaterThanOrEqual(3);

      // Every visible file parses completely; temp files may be cut off, but they are hidden.
      const { files } = await walk(basePath);
      cutOffWrites += files.filter((f) => isHidden(f) && !hiddenBefore.has(f)).length;
      const visible = files.filter((f) => !isHidden(f));
      expect(visible.filter((f) => f.includes('/contacts/'))).toHaveLength(8);
      for (const file of visible) {
        const record = decode<{ content?: { round: number; blob: string } }>(
          await fs.readFile(path.join(basePath, file), 'utf8'),
        );
        if (file.includes('/contacts/')) {
          expect(record.content!.blob).toHaveLength(200_000);
          expect(record.content!.round).toBeGreaterThanOrEqual(rounds);
        }
      }
    }
    expect(cutOffWrites).toBeGreaterThan(0);

    const s = storage();
    for (const group of groups) {
      const state = await s.loadGroupState('net', group);
      expect(state!.contacts.size).toBe(2);
      for (const contact of state!.contacts.values())
        expect((contact.content as { set: Set<number> }).set).toBeInstanceOf(Set);
    }
    // And the storage carries on writing after the crash.
    await s.saveContactContent('net', 'g0', 'c0', 'after the crash');
    expect(await s.loadContactContent('net', 'g0', 'c0')).toBe('after the crash');
  });
});

describe('FileSystemStorage errors', () => {
  it('refuses missing options with InvalidArgumentError naming basePath', () => {
    expect(() => new FileSystemStorage({} as never)).toThrow(InvalidArgumentError);
    expect(() => new FileSystemStorage({} as never)).toThrow(/basePath/);
  });

  it('reports a file system it cannot use as StorageUnavailableError keeping the errno code, and tries a failed initialize again', async () => {
    const base = path.join(outer, `blocked-${Date.now()}`);
    // A file where the folder should be: every directory operation below it fails.
    await fs.writeFile(base, 'not a folder');
    const storage = new FileSystemStorage({ basePath: path.join(base, 'store') });
    const failure = await storage.initialize().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StorageUnavailableError);
    expect(failure).toMatchObject({ code: 'UNAVAILABLE', status: expect.stringMatching(/^(ENOTDIR|EEXIST)$/) });
    await expect(storage.saveContactContent('n', 'g', 'c', 1)).rejects.toBeInstanceOf(StorageUnavailableError);
    // The obstacle gone, the next call sets the store up instead of repeating the old failure.
    await fs.rm(base);
    await storage.saveContactContent('n', 'g', 'c', 1);
    expect(await storage.loadContactContent('n', 'g', 'c')).toBe(1);
    await storage.close();
  });
});

describe('FileSystemStorage shared between instances', () => {
  describeSharedTombstones('filesystem, lock file', async () => {
    const shared = path.join(outer, 'shared');
    const [first, second] = [
      new FileSystemStorage({ basePath: shared, fsync: false }),
      new FileSystemStorage({ basePath: shared, fsync: false }),
    ];
    return { first, second, close: async () => void (await Promise.all([first.close(), second.close()])) };
  });

  describeSharedTombstones('memory, one MemoryStateStore', async () => {
    const store = new MemoryStateStore();
    const [first, second] = [new DocumentStorage(store), new DocumentStorage(store)];
    return { first, second, close: async () => void (await first.close()) };
  });
});

describe('FileSystemStorage lone writes', () => {
  it('read no file before they write: one stat of the network record, then the atomic write of the contact', async () => {
    const s = storage();
    for (const id of ['a', 'b', 'c']) await s.saveContactContent('net', 'g', id, `first ${id}`);
    await s.saveContactContent('net', 'g', 'b', 'second b');
    const reads = jest.spyOn(fs, 'readFile');
    const listings = jest.spyOn(fs, 'readdir');
    const stats = jest.spyOn(fs, 'stat');
    const opens = jest.spyOn(fs, 'open');
    try {
      await s.saveContactContent('net', 'g', 'b', 'third b');
      await s.saveContactContent('net', 'g', 'c', 'second c');
      expect(reads).not.toHaveBeenCalled();
      expect(listings).not.toHaveBeenCalled();
      expect(stats.mock.calls.map(([file]) => path.relative(basePath, String(file)))).toEqual([
        path.join('networks', 'net', 'metadata.json'),
        path.join('networks', 'net', 'metadata.json'),
      ]);
      // Each write opens its temp file, nothing else.
      expect(opens.mock.calls.map(([file]) => path.basename(String(file)))).toEqual([
        expect.stringMatching(/^\.b\.json\..*\.tmp$/),
        expect.stringMatching(/^\.c\.json\..*\.tmp$/),
      ]);
    } finally {
      for (const spy of [reads, listings, stats, opens]) spy.mockRestore();
    }
    const reopened = storage({ writerId: 'reader' });
    expect(await reopened.loadContactContent('net', 'g', 'b')).toBe('third b');
    expect(await reopened.loadContactContent('net', 'g', 'c')).toBe('second c');
  });

  it('see a network record another process replaced: a write older than the tombstone it recorded is superseded', async () => {
    const s = storage({ writerId: 'here' });
    await s.saveContactContent('net', 'g', 'c', 1);
    await s.saveContactContent('net', 'g', 'c', 2);
    // Another process deletes the group later than anything this one stamps in the next hour,
    // replacing the record as this store does (temp file, then rename).
    const file = path.join(basePath, 'networks/net/metadata.json');
    const record = decode<{ tombstones?: Record<string, string> }>(await fs.readFile(file, 'utf8'));
    record.tombstones = { g: formatStamp({ wallTime: Date.now() + 3_600_000, logical: 0, writerId: 'other' }) };
    await fs.writeFile(`${file}.other.tmp`, encodeRecord(record));
    await fs.rename(`${file}.other.tmp`, file);

    await s.saveContactContent('net', 'g', 'c', 3);
    expect(await s.loadContactContent('net', 'g', 'c')).toBe(2);
  });
});

describe('FileSystemStorage group commit', () => {
  /** Counts the renames that complete (each one a file write made visible) below `dir`, and the fsyncs of file data. */
  async function countFileWrites(dir: string) {
    const renamed: string[] = [];
    const realRename = fs.rename.bind(fs);
    const renameSpy = jest.spyOn(fs, 'rename').mockImplementation(async (from, to) => {
      await realRename(from, to);
      if (String(to).startsWith(dir)) renamed.push(String(to));
    });
    const probe = await fs.open(path.join(outer, 'probe'), 'w');
    const handlePrototype = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
    await probe.close();
    const datasyncSpy = jest.spyOn(handlePrototype, 'datasync');
    return {
      renamed,
      datasyncs: () => datasyncSpy.mock.calls.length,
      restore: () => {
        renameSpy.mockRestore();
        datasyncSpy.mockRestore();
      },
    };
  }

  /** The contact as it is on disk now: the newer of its own file and its copy packed into the group record. */
  function contactOnDisk(groupDir: string, contactId: string): unknown {
    const read = (file: string) => {
      try {
        return decode<Record<string, unknown>>(readFileSync(file, 'utf8'));
      } catch {
        return null;
      }
    };
    const single = read(path.join(groupDir, 'contacts', `${contactId}.json`)) as { content?: unknown } | null;
    const record = read(path.join(groupDir, 'group.json')) as {
      contacts?: Map<string, { content?: unknown; version?: { stamp: string } }>;
    } | null;
    const packed = record?.contacts?.get(contactId);
    return [single, packed].filter(Boolean).map((c) => (c as { content?: unknown }).content);
  }

  it('writes N concurrent writes to one group in fewer file writes, answering each once its write is on disk', async () => {
    const first = storage({ writerId: 'committer' });
    await first.saveContactContent('net', 'g', 'seed', 0);
    const groupDir = path.join(basePath, 'networks/net/groups/g');
    const counter = await countFileWrites(groupDir);
    const N = 24;
    const seenOnDisk: boolean[] = [];
    try {
      await Promise.all(
        Array.from({ length: N }, (_, i) =>
          first.saveContactContent('net', 'g', `c${i}`, { i }).then(() => {
            // Synchronously, at the moment the caller is answered: its write is already renamed into place.
            seenOnDisk[i] = (contactOnDisk(groupDir, `c${i}`) as unknown[]).some(
              (content) => (content as { i?: number } | undefined)?.i === i,
            );
          }),
        ),
      );
      expect(seenOnDisk).toEqual(Array.from({ length: N }, () => true));
      expect(counter.renamed.length).toBeGreaterThan(0);
      expect(counter.renamed.length).toBeLessThanOrEqual(N / 2);
      // Every file made visible was fsynced first.
      expect(counter.datasyncs()).toBeGreaterThanOrEqual(counter.renamed.length);
    } finally {
      counter.restore();
    }
    await first.close();

    const reopened = storage({ writerId: 'reader' });
    const state = await reopened.loadGroupState('net', 'g');
    expect(state!.contacts.size).toBe(N + 1);
    for (let i = 0; i < N; i++) expect(await reopened.loadContactContent('net', 'g', `c${i}`)).toEqual({ i });
  });

  it('applies concurrent writes to one contact in order and each at most once', async () => {
    const s = storage({ writerId: 'merger' });
    const N = 20;
    await Promise.all([
      ...Array.from({ length: N }, (_, i) =>
        s.saveContactContent('net', 'g', 'tags', growSet([`t${i}`]), { blendMode: 'merge' }),
      ),
      ...Array.from({ length: N }, (_, i) => s.saveContactContent('net', 'g', 'latest', i)),
    ]);
    await s.close();
    const reopened = storage({ writerId: 'reader' });
    expect(await reopened.loadContactContent('net', 'g', 'tags')).toEqual(
      growSet(Array.from({ length: N }, (_, i) => `t${i}`)),
    );
    // accept-last: the newest stamp wins, and this writer stamped them in call order.
    expect(await reopened.loadContactContent('net', 'g', 'latest')).toBe(N - 1);
  });

  it('refuses a bad write on its own, without failing the writes it would have been committed with', async () => {
    const s = storage();
    await s.saveContactContent('net', 'g', 'seed', 0);
    const results = await Promise.allSettled([
      s.saveContactContent('net', 'g', 'a', 1),
      s.applyContactWrite('net', 'g', 'b', { content: 2, stamp: 'not a stamp', writerId: 'w', seq: 1 }),
      s.saveContactContent('net', 'g', 'c', 3),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidArgumentError);
    expect(await s.loadContactContent('net', 'g', 'b')).toBeNull();
    expect(await s.loadContactContent('net', 'g', 'c')).toBe(3);
  });

  it('loses no answered write when the writing process is killed mid-stream', async () => {
    // 16 writers in one process write to contacts of ONE group, so their writes are group-committed,
    // and print each write once it is answered. After a SIGKILL, every answered write must be on disk.
    const script = path.join(outer, 'committer.ts');
    await fs.writeFile(
      script,
      `
      import { FileSystemStorage } from ${JSON.stringify(SHARED_INDEX)};
      const storage = new FileSystemStorage({ basePath: ${JSON.stringify(basePath)}, writerId: 'child' });
      (async () => {
        await storage.initialize();
        await Promise.all(Array.from({ length: 16 }, async (_, k) => {
          for (let round = 1; ; round++) {
            await storage.saveContactContent('net', 'g', 'c' + k, { k, round, pad: 'x'.repeat(2_000) });
            process.stdout.write('answered ' + k + ' ' + round + '\\n');
          }
        }));
      })();
      `,
    );
    const answered = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', TSX_LOADER, script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      let stderr = '';
      const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        // Killed once well under way, while writes are in flight.
        if ((output.match(/\n/g) ?? []).length >= 300) child.kill('SIGKILL');
      });
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // 'close': stdout is drained, so every answer the child printed is here.
      child.on('close', (_code, signal) => {
        clearTimeout(deadline);
        if (signal === 'SIGKILL' && (output.match(/\n/g) ?? []).length >= 300) resolve(output);
        else reject(new Error(`the writer stopped early (signal ${signal}); stderr: ${stderr}`));
      });
    });
    const newestAnswered = new Map<number, number>();
    for (const [, k, round] of answered.matchAll(/answered (\d+) (\d+)\n/g))
      newestAnswered.set(Number(k), Math.max(newestAnswered.get(Number(k)) ?? 0, Number(round)));
    expect(newestAnswered.size).toBe(16);

    const s = storage();
    let losses = 0;
    for (const [k, round] of newestAnswered) {
      const stored = (await s.loadContactContent('net', 'g', `c${k}`)) as { round: number } | null;
      if (!stored || stored.round < round) losses++;
    }
    expect(losses).toBe(0);
  });
});

describe('FileSystemStorage whole-network reads', () => {
  it('answers a query reading each group file once and contacts only of the groups it returns', async () => {
    const s = storage();
    const groups = Array.from({ length: 12 }, (_, i) => {
      const state = groupState(`g${i}`, { a: i, b: -i });
      state.group.attributes = { 'bassline.tags': [`t${i % 3}`], serial: i };
      return [`g${i}`, state] as const;
    });
    await s.saveNetworkState('net', { groups: new Map(groups), rootGroupId: 'g0', currentGroupId: 'g0' });
    const reads: string[] = [];
    const readSpy = jest.spyOn(fs, 'readFile');
    try {
      readSpy.mockClear();
      const found = await s.queryGroups('net', { tags: ['t1'] });
      reads.push(...readSpy.mock.calls.map(([file]) => path.relative(basePath, String(file))));
      expect(found.map((g) => g.group.id).sort()).toEqual(['g1', 'g10', 'g4', 'g7']);
      expect(found.find((g) => g.group.id === 'g4')!.contacts.get('b')!.content).toBe(-4);
    } finally {
      readSpy.mockRestore();
    }
    const groupFiles = reads.filter((f) => f.endsWith('group.json'));
    expect(groupFiles).toHaveLength(12);
    expect(new Set(groupFiles).size).toBe(12);
    const contactGroups = new Set(reads.filter((f) => f.includes('/contacts/')).map((f) => f.split('/')[3]));
    expect([...contactGroups].sort()).toEqual(['g1', 'g10', 'g4', 'g7']);

    const loaded = await s.loadNetworkState('net');
    expect([...loaded!.groups.keys()]).toEqual(groups.map(([id]) => id).sort());
  });
});
