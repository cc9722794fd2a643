/**
 * PostgresStorage beside FileSystemStorage and GcsStorage (on the Storage emulator), in one run
 * on this machine: contact writes/s, group loads/s, and queryGroups latency over a network of
 * 10k groups. Ratios are to FileSystemStorage. PostgreSQL is a private server started here
 * (fsync off, like the filesystem backend's fsync: false); the Storage emulator runs in its own
 * process.
 *
 *     npm run bench:postgres   (SPINE_BENCH_CONTACTS=5000 SPINE_BENCH_GROUPS=100 SPINE_BENCH_QUERY_GROUPS=10000)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startPostgres } from '../emulators/postgres';
import { FileSystemStorage, type GroupQuery, type GroupState, type NetworkStorage } from '../shared';
import { GcsStorage } from '../shared/entry/gcs';
import { PostgresStorage } from '../shared/entry/postgres';
import {
  emulatorClient,
  inParallel,
  int,
  now,
  percentile,
  quiet,
  runBench,
  startStorageEmulatorProcess,
} from './support';

process.env.METADATA_SERVER_DETECTION ??= 'none';

const CONTACTS = int('SPINE_BENCH_CONTACTS', 5_000);
const GROUPS = int('SPINE_BENCH_GROUPS', 100);
const GROUP_LOADS = int('SPINE_BENCH_GROUP_LOADS', 2_000);
const QUERY_GROUPS = int('SPINE_BENCH_QUERY_GROUPS', 10_000);
const CONCURRENCY = 32;
const BUCKET = 'bench-postgres';
/** Queries per backend: a slow backend gets fewer, so the run stays minutes long. */
const QUERIES: Record<string, number> = { postgres: 200, filesystem: 10, gcs: 5 };

interface Result {
  backend: string;
  writesPerSecond: number;
  groupLoadsPerSecond: number;
  populateSeconds: number;
  query: { n: number; p50: number; p95: number; matches: number };
}

function payload(i: number) {
  return { value: i, label: `contact ${i}`, tags: ['bench', `g${i % GROUPS}`], at: new Date(1_700_000_000_000 + i) };
}

/** QUERY_GROUPS groups of 2 contacts; 1% tagged `rare`, authors spread over 10, a type per 4. */
function queryNetwork() {
  const groups = new Map<string, GroupState>();
  for (let i = 0; i < QUERY_GROUPS; i++) {
    const id = `q${i}`;
    const contacts = [0, 1].map((k) => ({
      id: `c${k}`,
      groupId: id,
      content: { i, k },
      blendMode: 'accept-last' as const,
    }));
    const attributes = {
      'bassline.tags': i % 100 === 0 ? ['rare', 'bench'] : ['bench'],
      'bassline.author': `author-${i % 10}`,
      'bassline.type': `type-${i % 4}`,
      serial: i,
    };
    groups.set(id, {
      group: {
        id,
        name: id,
        contactIds: ['c0', 'c1'],
        wireIds: [],
        subgroupIds: [],
        boundaryContactIds: [],
        attributes,
      },
      contacts: new Map(contacts.map((c) => [c.id, c])),
      wires: new Map(),
    });
  }
  return { groups, rootGroupId: 'q0', currentGroupId: 'q0' };
}

/** A selective tag (1%), an author and type together (2.5%), one attribute value (1 group), in turn. */
const QUERY_MIX: GroupQuery[] = [
  { tags: ['rare'] },
  { author: 'author-3', type: 'type-1' },
  { attributes: { serial: 4242 } },
];

async function measure(backend: string, storage: NetworkStorage): Promise<Result> {
  await storage.initialize();
  let start = now();
  await inParallel(CONTACTS, CONCURRENCY, (i) =>
    storage.saveContactContent('bench', `g${i % GROUPS}`, `c${i}`, payload(i)),
  );
  const writesPerSecond = CONTACTS / ((now() - start) / 1000);
  start = now();
  await inParallel(GROUP_LOADS, CONCURRENCY, (i) => storage.loadGroupState('bench', `g${i % GROUPS}`));
  const groupLoadsPerSecond = GROUP_LOADS / ((now() - start) / 1000);

  start = now();
  await storage.saveNetworkState('query', queryNetwork());
  const populateSeconds = (now() - start) / 1000;
  const latencies: number[] = [];
  let matches = 0;
  for (let q = 0; q < QUERIES[backend]!; q++) {
    const began = now();
    matches += (await storage.queryGroups('query', QUERY_MIX[q % QUERY_MIX.length]!)).length;
    latencies.push(now() - began);
  }
  latencies.sort((a, b) => a - b);
  await storage.close();
  return {
    backend,
    writesPerSecond,
    groupLoadsPerSecond,
    populateSeconds,
    query: { n: latencies.length, p50: percentile(latencies, 50), p95: percentile(latencies, 95), matches },
  };
}

async function main(): Promise<void> {
  const postgres = await startPostgres({ logger: quiet });
  const emulator = await startStorageEmulatorProcess();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'spine-bench-pg-fs-'));
  try {
    await emulatorClient(emulator.url).createBucket(BUCKET);
    console.log(
      `PostgresStorage vs FileSystemStorage vs GcsStorage: ${CONTACTS} contact writes over ${GROUPS} groups, ${GROUP_LOADS} group loads (concurrency ${CONCURRENCY}), ` +
        `queryGroups over ${QUERY_GROUPS} groups; ${os.cpus().length} CPUs, node ${process.version}, PostgreSQL on ${postgres.url} (fsync off), Storage emulator ${emulator.url}`,
    );
    const results: Result[] = [];
    const run = async (backend: string, storage: NetworkStorage) => {
      process.stderr.write(`${backend}…\n`);
      results.push(await measure(backend, storage));
    };
    await run('filesystem', new FileSystemStorage({ basePath: dir, fsync: false, logger: quiet }));
    await run('postgres', new PostgresStorage({ connectionString: postgres.url, poolSize: 10, logger: quiet }));
    await run(
      'gcs',
      new GcsStorage({ bucket: BUCKET, prefix: 'spine/', storage: emulatorClient(emulator.url), logger: quiet }),
    );

    const base = results.find((r) => r.backend === 'filesystem')!;
    const ratio = (value: number, baseline: number) => `${(value / baseline).toFixed(2)}x`;
    console.log('');
    console.log(
      `backend      writes/s  vs fs   group loads/s  vs fs   query p50 ms  query p95 ms  vs fs (p50)  queries  save of ${QUERY_GROUPS} groups s`,
    );
    for (const r of results) {
      console.log(
        [
          r.backend.padEnd(10),
          r.writesPerSecond.toFixed(0).padStart(10),
          ratio(r.writesPerSecond, base.writesPerSecond).padStart(7),
          r.groupLoadsPerSecond.toFixed(0).padStart(15),
          ratio(r.groupLoadsPerSecond, base.groupLoadsPerSecond).padStart(7),
          r.query.p50.toFixed(1).padStart(14),
          r.query.p95.toFixed(1).padStart(13),
          ratio(base.query.p50, r.query.p50).padStart(12),
          String(r.query.n).padStart(8),
          r.populateSeconds.toFixed(1).padStart(String(QUERY_GROUPS).length + 15),
        ].join(' '),
      );
    }
    console.log(
      "\n(vs fs: how many times FileSystemStorage's figure; for latency, FileSystemStorage's p50 over this one's, so higher is faster)",
    );
  } finally {
    emulator.child.kill();
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

runBench(main);
