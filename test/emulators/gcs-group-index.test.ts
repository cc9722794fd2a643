import { Storage, type Bucket, type BucketOptions } from '@google-cloud/storage';
import fc from 'fast-check';
import { type GroupQuery, type GroupState, type NetworkStorage } from 'super-spine';
import { GcsStorage } from 'super-spine/gcs';
import { groupMatches } from '../../shared/query';
import { createMemoryLogger } from '../helpers/emulators';
import { emulatorClient, freshPrefix, groupState, useStorageEmulator } from '../helpers/gcs';

process.env.METADATA_SERVER_DETECTION = 'none';

const BUCKET = `gcs-group-index-${process.pid}`;
const gcs = useStorageEmulator(BUCKET);
const NETWORK = 'n';
const GROUPS = ['g0', 'g1', 'g2', 'g3', 'g4', 'g5'];
const QUERIES: GroupQuery[] = [
  { tags: ['a'] },
  { tags: ['a', 'b'] },
  { tags: ['c'] },
  { attributes: { serial: 1 } },
  { author: 'ann' },
  { type: 'kind-0', tags: ['b'] },
  {},
];

/** A client that notes every object name it opens, so a test can see which objects a query read. */
class CountingStorage extends Storage {
  readonly opened: string[] = [];

  override bucket(name: string, options?: BucketOptions): Bucket {
    const bucket = super.bucket(name, options);
    const file = bucket.file.bind(bucket);
    bucket.file = (fileName, fileOptions) => {
      this.opened.push(fileName);
      return file(fileName, fileOptions);
    };
    return bucket;
  }
}

function countingClient(): CountingStorage {
  return new CountingStorage({
    apiEndpoint: gcs.emulator.url,
    projectId: 'test-project',
    retryOptions: { autoRetry: false },
  });
}

function newStorage(prefix: string, storage: Storage = emulatorClient(gcs.emulator)): GcsStorage {
  return new GcsStorage({ bucket: BUCKET, prefix, storage, logger: createMemoryLogger() });
}

interface Labels {
  tags: string[];
  serial?: number;
  author?: string;
  kind?: number;
}

function labelled(groupId: string, labels: Labels | null): GroupState {
  if (!labels) return groupState(groupId, { c: groupId });
  return groupState(
    groupId,
    { c: groupId },
    {
      attributes: {
        'bassline.tags': labels.tags,
        ...(labels.author !== undefined && { 'bassline.author': labels.author }),
        ...(labels.kind !== undefined && { 'bassline.type': `kind-${labels.kind}` }),
        ...(labels.serial !== undefined && { serial: labels.serial }),
      },
    },
  );
}

/** What each query must answer: every group of the network, read one by one (by a reader of its own), filtered here. */
async function expectQueriesMatchScan(...storages: NetworkStorage[]): Promise<void> {
  const scanner = newStorage(storages[0] instanceof GcsStorage ? storages[0].prefix : '');
  const state = await scanner.loadNetworkState(NETWORK);
  await scanner.close();
  const all = [...(state?.groups.values() ?? [])];
  const byId = (states: GroupState[]) => [...states].sort((a, b) => (a.group.id < b.group.id ? -1 : 1));
  for (const query of QUERIES) {
    const expected = byId(all.filter((group) => groupMatches(group.group, query)));
    for (const storage of storages) expect(byId(await storage.queryGroups(NETWORK, query))).toEqual(expected);
  }
}

function indexObject(prefix: string) {
  return gcs.client.bucket(BUCKET).file(`${prefix}networks/${NETWORK}/index.json`);
}

const labelsArb: fc.Arbitrary<Labels | null> = fc.option(
  fc.record(
    {
      tags: fc.subarray(['a', 'b', 'c']),
      serial: fc.integer({ min: 0, max: 2 }),
      author: fc.constantFrom('ann', 'bob'),
      kind: fc.integer({ min: 0, max: 1 }),
    },
    { requiredKeys: ['tags'] },
  ),
  { freq: 4 },
);

type Operation =
  | { kind: 'save'; writer: number; group: string; labels: Labels | null }
  | { kind: 'delete'; writer: number; group: string }
  | { kind: 'contact'; writer: number; group: string };

const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('save' as const),
      writer: fc.nat(1),
      group: fc.constantFrom(...GROUPS),
      labels: labelsArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      writer: fc.nat(1),
      group: fc.constantFrom(...GROUPS),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('contact' as const),
      writer: fc.nat(1),
      group: fc.constantFrom(...GROUPS),
    }),
  },
);

function run(writers: GcsStorage[], op: Operation): Promise<void> {
  const storage = writers[op.writer]!;
  switch (op.kind) {
    case 'save':
      return storage.saveGroupState(NETWORK, op.group, labelled(op.group, op.labels));
    case 'delete':
      return storage.deleteGroup(NETWORK, op.group);
    case 'contact':
      return storage.saveContactContent(NETWORK, op.group, 'extra', op.group);
  }
}

describe('GcsStorage group index', () => {
  it('answers tag and attribute queries as a full scan does after random saves, deletes and tag changes by two writers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(operationArb, { minLength: 1, maxLength: 8 }),
        fc.array(operationArb, { minLength: 0, maxLength: 4 }),
        async (sequential, concurrent) => {
          const prefix = freshPrefix('index-property');
          // Two stores over one bucket, each with its own client and caches, as two function instances.
          const writers = [newStorage(prefix), newStorage(prefix)];
          try {
            for (const op of sequential) await run(writers, op);
            // At once, on different groups: their index updates race for the one index object.
            const distinct = [...new Map(concurrent.map((op) => [op.group, op])).values()];
            await Promise.all(distinct.map((op) => run(writers, op)));
            const fresh = newStorage(prefix);
            await expectQueriesMatchScan(writers[0]!, writers[1]!, fresh);
            await fresh.close();
          } finally {
            await Promise.all(writers.map((w) => w.close()));
          }
        },
      ),
      { numRuns: 6 },
    );
  });

  it('keeps the index right when another writer changed it since this one last wrote it (a 412 on the index)', async () => {
    const prefix = freshPrefix('index-conflict');
    const [first, second] = [newStorage(prefix), newStorage(prefix)];
    await first.saveGroupState(NETWORK, 'g0', labelled('g0', { tags: ['a'] }));
    await second.saveGroupState(NETWORK, 'g1', labelled('g1', { tags: ['a', 'b'] }));
    // `first` still holds the index as it wrote it: its next update starts from that copy and is refused.
    const conflictsBefore = first.retryCounters().preconditionFailures;
    await first.saveGroupState(NETWORK, 'g2', labelled('g2', { tags: ['b'] }));
    expect(first.retryCounters().preconditionFailures).toBeGreaterThan(conflictsBefore);
    const ids = async (storage: GcsStorage, query: GroupQuery) =>
      (await storage.queryGroups(NETWORK, query)).map((s) => s.group.id).sort();
    for (const storage of [first, second]) {
      expect(await ids(storage, { tags: ['a'] })).toEqual(['g0', 'g1']);
      expect(await ids(storage, { tags: ['b'] })).toEqual(['g1', 'g2']);
    }
    await expectQueriesMatchScan(first);
    await Promise.all([first.close(), second.close()]);
  });

  it('reads the index and the matching groups only, never the groups that do not match', async () => {
    const prefix = freshPrefix('index-reads');
    const writer = newStorage(prefix);
    await writer.saveNetworkState(NETWORK, {
      groups: new Map(
        Array.from(
          { length: 30 },
          (_, i) => [`g${i}`, labelled(`g${i}`, { tags: [`t${i % 10}`], serial: i })] as const,
        ),
      ),
      rootGroupId: 'g0',
      currentGroupId: 'g0',
    });
    const client = countingClient();
    const reader = newStorage(prefix, client);
    await reader.initialize();
    const groupRecordsRead = () =>
      client.opened
        .filter((name) => name.endsWith('/group.json'))
        .map((name) => name.split('/groups/')[1]!.split('/')[0]);

    client.opened.length = 0;
    const tagged = await reader.queryGroups(NETWORK, { tags: ['t3'] });
    expect(tagged.map((s) => s.group.id).sort()).toEqual(['g13', 'g23', 'g3']);
    expect(groupRecordsRead().sort()).toEqual(['g13', 'g23', 'g3']);
    expect(client.opened).toContain(`${prefix}networks/${NETWORK}/index.json`);

    client.opened.length = 0;
    expect((await reader.queryGroups(NETWORK, { attributes: { serial: 17 } })).map((s) => s.group.id)).toEqual(['g17']);
    expect(groupRecordsRead()).toEqual(['g17']);

    client.opened.length = 0;
    expect(await reader.queryGroups(NETWORK, { tags: ['nothing'] })).toEqual([]);
    expect(groupRecordsRead()).toEqual([]);
    await Promise.all([writer.close(), reader.close()]);
  });

  it('rebuilds a lost or corrupt index from the group records and answers right meanwhile', async () => {
    const prefix = freshPrefix('index-rebuild');
    const storage = newStorage(prefix);
    for (let i = 0; i < 6; i++)
      await storage.saveGroupState(
        NETWORK,
        `g${i}`,
        labelled(`g${i}`, { tags: i % 2 ? ['odd'] : ['even'], serial: i }),
      );
    const ids = async (query: GroupQuery) => (await storage.queryGroups(NETWORK, query)).map((s) => s.group.id).sort();

    await indexObject(prefix).delete();
    expect(await ids({ tags: ['odd'] })).toEqual(['g1', 'g3', 'g5']);
    const [rebuilt] = await indexObject(prefix).exists();
    expect(rebuilt).toBe(true);

    await indexObject(prefix).save('{"not": "an index"', { resumable: false });
    expect(await ids({ tags: ['even'] })).toEqual(['g0', 'g2', 'g4']);
    // Rewritten whole: a fresh reader answers from it without another rebuild.
    const [text] = await indexObject(prefix).download();
    expect(text.toString()).toContain('g5');

    // A writer that meets a corrupt index rebuilds it too, with its own change on top.
    await indexObject(prefix).save('garbage', { resumable: false });
    await storage.saveGroupState(NETWORK, 'g6', labelled('g6', { tags: ['odd'] }));
    const fresh = newStorage(prefix);
    expect((await fresh.queryGroups(NETWORK, { tags: ['odd'] })).map((s) => s.group.id).sort()).toEqual([
      'g1',
      'g3',
      'g5',
      'g6',
    ]);
    await expectQueriesMatchScan(fresh);
    await Promise.all([storage.close(), fresh.close()]);
  });

  it('drops a deleted group from the index', async () => {
    const prefix = freshPrefix('index-delete');
    const storage = newStorage(prefix);
    await storage.saveGroupState(NETWORK, 'g0', labelled('g0', { tags: ['a'] }));
    await storage.saveGroupState(NETWORK, 'g1', labelled('g1', { tags: ['a'] }));
    await storage.deleteGroup(NETWORK, 'g0');
    await storage.saveGroupState(NETWORK, 'g1', labelled('g1', { tags: ['b'] }));
    const [text] = await indexObject(prefix).download();
    expect(text.toString()).not.toContain('"g0"');
    expect((await storage.queryGroups(NETWORK, { tags: ['a'] })).map((s) => s.group.id)).toEqual([]);
    expect((await storage.queryGroups(NETWORK, { tags: ['b'] })).map((s) => s.group.id)).toEqual(['g1']);
    await storage.close();
  });
});
