/**
 * Network-scale steps on every backend, each beside its anchor in the same run: a network of
 * 1,000 groups with 5 contacts each and tags and attributes on every group (the shape of
 * Bassline's own storage tests), saved, loaded, queried by tag and by attribute, snapshotted,
 * and 100 groups saved at once. Anchors: Bassline's published PostgreSQL figures (its machine),
 * this machine's plain SQL for the same work on the same PostgreSQL server, the raw atomic
 * write + fdatasync + rename rate of the same files for FileSystemStorage, and the targets of issue 19.
 *
 *     npm run bench:scale   (SPINE_BENCH_GROUPS=1000 SPINE_BENCH_CONTACTS_PER_GROUP=5 SPINE_BENCH_REPEATS=3 SPINE_BENCH_MESH=1)
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { Client, Pool } from 'pg';
import { startLocalMesh } from '../cli/local-mesh';
import { startPostgres } from '../emulators/postgres';
import { FileSystemStorage, MemoryStorage, type NetworkState, type NetworkStorage } from '../shared';
import { GcsStorage } from '../shared/entry/gcs';
import { PostgresStorage } from '../shared/entry/postgres';
import {
  emulatorClient,
  int,
  meshClient,
  now,
  quiet,
  round,
  runBench,
  scaleGroup,
  startStorageEmulatorProcess,
} from './support';

process.env.METADATA_SERVER_DETECTION ??= 'none';

const GROUPS = int('SPINE_BENCH_GROUPS', 1_000);
const CONTACTS_PER_GROUP = int('SPINE_BENCH_CONTACTS_PER_GROUP', 5);
const REPEATS = int('SPINE_BENCH_REPEATS', 3);
const CONCURRENT_SAVES = 100;
const SINGLE_WRITES = int('SPINE_BENCH_SINGLE_WRITES', 2_000);
const MEMORY_WRITES = int('SPINE_BENCH_MEMORY_WRITES', 50_000);
const WITH_MESH = process.env.SPINE_BENCH_MESH !== '0';
/** SPINE_BENCH_ONLY=gcs,mesh measures only those parts (backends postgres, filesystem, gcs, memory, mesh, and writes: single writes); default all. */
const ONLY = process.env.SPINE_BENCH_ONLY?.split(',').map((name) => name.trim());
const measures = (backend: string) => !ONLY || ONLY.includes(backend);

/** Bassline's PostgreSQL figures for the same steps (its PRODUCTION_READY.md, PostgreSQL 17), ms. */
const BASSLINE_MS: Record<Step, number> = { save: 46, load: 8, tag: 6, attribute: 3, snapshot: 24, concurrent: 23 };
type Step = 'save' | 'load' | 'tag' | 'attribute' | 'snapshot' | 'concurrent';
const STEPS: Step[] = ['save', 'load', 'tag', 'attribute', 'snapshot', 'concurrent'];
const STEP_NAMES: Record<Step, string> = {
  save: 'saveNetworkState',
  load: 'loadNetworkState',
  tag: 'queryGroups by tag',
  attribute: 'queryGroups by attribute',
  snapshot: 'saveSnapshot',
  concurrent: `${CONCURRENT_SAVES} concurrent saveGroupState`,
};

const groupState = (i: number, revision = 0) => scaleGroup(i, CONTACTS_PER_GROUP, revision);

function network(): NetworkState {
  return {
    groups: new Map(Array.from({ length: GROUPS }, (_, i) => [`g${i}`, groupState(i)] as const)),
    rootGroupId: 'g0',
    currentGroupId: 'g0',
  };
}

/** The median of `REPEATS` timings of `step`, ms. */
async function median(step: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const start = now();
    await step();
    times.push(now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function expectCount(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what} returned ${got} groups, expected ${want}`);
}

/** Every step against one backend; `settle` waits until saves are readable (the mesh materializes them). */
async function measureSteps(
  storage: NetworkStorage,
  settle: () => Promise<void> = async () => undefined,
): Promise<Record<Step, number>> {
  await storage.initialize();
  const id = `scale-${randomUUID().slice(0, 6)}`;
  const state = network();
  const save = await median(async () => {
    await storage.saveNetworkState(id, state);
    await settle();
  });
  const load = await median(async () =>
    expectCount('loadNetworkState', (await storage.loadNetworkState(id))?.groups.size ?? 0, GROUPS),
  );
  const tag = await median(async () =>
    expectCount('tag query', (await storage.queryGroups(id, { tags: ['t3'] })).length, Math.ceil((GROUPS - 3) / 10)),
  );
  const attribute = await median(async () =>
    expectCount('attribute query', (await storage.queryGroups(id, { attributes: { serial: 42 } })).length, 1),
  );
  const snapshot = await median(() => storage.saveSnapshot(id));
  let revision = 1;
  const concurrent = await median(async () => {
    const r = revision++;
    await Promise.all(
      Array.from({ length: CONCURRENT_SAVES }, (_, i) => storage.saveGroupState(id, `g${i}`, groupState(i, r))),
    );
    await settle();
  });
  await storage.deleteNetwork(id);
  return { save, load, tag, attribute, snapshot, concurrent };
}

/** The same work as plain SQL on the same server: one table of groups, one of contacts, a GIN index. */
async function plainSql(url: string): Promise<Record<Step, number>> {
  const db = new Client({ connectionString: url });
  await db.connect();
  try {
    await db.query(`DROP SCHEMA IF EXISTS plain CASCADE; CREATE SCHEMA plain;
      CREATE TABLE plain.groups (network text, id text, record jsonb, attributes jsonb, PRIMARY KEY (network, id));
      CREATE TABLE plain.contacts (network text, group_id text, id text, contact jsonb, PRIMARY KEY (network, group_id, id));
      CREATE TABLE plain.snapshots (id text PRIMARY KEY, network text, body jsonb);
      CREATE INDEX ON plain.groups USING gin (attributes jsonb_path_ops);`);
    const groups = Array.from({ length: GROUPS }, (_, i) => groupState(i));
    const ids = groups.map((g) => g.group.id);
    const records = groups.map((g) => JSON.stringify(g.group));
    const attributes = groups.map((g) => JSON.stringify(g.group.attributes));
    const contactRows = groups.flatMap((g) =>
      [...g.contacts.values()].map((c) => [g.group.id, c.id, JSON.stringify(c)] as const),
    );
    const save = await median(async () => {
      await db.query('BEGIN');
      await db.query(`DELETE FROM plain.contacts WHERE network = 'n'; DELETE FROM plain.groups WHERE network = 'n'`);
      await db.query(`INSERT INTO plain.groups SELECT 'n', * FROM unnest($1::text[], $2::jsonb[], $3::jsonb[])`, [
        ids,
        records,
        attributes,
      ]);
      await db.query(`INSERT INTO plain.contacts SELECT 'n', * FROM unnest($1::text[], $2::text[], $3::jsonb[])`, [
        contactRows.map((r) => r[0]),
        contactRows.map((r) => r[1]),
        contactRows.map((r) => r[2]),
      ]);
      await db.query('COMMIT');
    });
    const load = await median(() =>
      db.query(
        `SELECT g.id, g.record, (SELECT jsonb_agg(c.contact) FROM plain.contacts c WHERE c.network = g.network AND c.group_id = g.id) FROM plain.groups g WHERE g.network = 'n'`,
      ),
    );
    const byAttributes = (filter: object) =>
      db.query(
        `SELECT g.id, g.record, (SELECT jsonb_agg(c.contact) FROM plain.contacts c WHERE c.network = g.network AND c.group_id = g.id) FROM plain.groups g WHERE g.network = 'n' AND g.attributes @> $1`,
        [JSON.stringify(filter)],
      );
    const tag = await median(() => byAttributes({ 'bassline.tags': ['t3'] }));
    const attribute = await median(() => byAttributes({ serial: 42 }));
    const snapshot = await median(() =>
      db.query(
        `INSERT INTO plain.snapshots SELECT $1, 'n', jsonb_agg(jsonb_build_object('group', g.record, 'contacts', (SELECT jsonb_agg(c.contact) FROM plain.contacts c WHERE c.network = g.network AND c.group_id = g.id))) FROM plain.groups g WHERE g.network = 'n'`,
        [randomUUID()],
      ),
    );
    const pool = new Pool({ connectionString: url, max: 10 });
    const concurrent = await median(() =>
      Promise.all(
        Array.from({ length: CONCURRENT_SAVES }, (_, i) =>
          pool.query(
            `INSERT INTO plain.groups VALUES ('n', $1, $2, $3) ON CONFLICT (network, id) DO UPDATE SET record = excluded.record, attributes = excluded.attributes`,
            [ids[i], records[i], attributes[i]],
          ),
        ),
      ),
    );
    await pool.end();
    return { save, load, tag, attribute, snapshot, concurrent };
  } finally {
    await db.end();
  }
}

/**
 * Plain atomic replaces of the files `singleWrites` writes: 50 folders of 20 files, write `i` to
 * file `i % 20` of folder `i % 50`, each a temporary file beside the target written with `bytes`,
 * flushed with fdatasync, closed and renamed over the target: what FileSystemStorage does for a
 * file (it does not fsync the folder either). Writes `from` … `to - 1`; ms taken.
 */
async function rawAtomicWrites(dir: string, from: number, to: number, bytes: number): Promise<number> {
  const body = Buffer.alloc(bytes, 'x');
  await Promise.all(Array.from({ length: 50 }, (_, g) => mkdir(path.join(dir, `g${g}`), { recursive: true })));
  const start = now();
  for (let i = from; i < to; i++) {
    const target = path.join(dir, `g${i % 50}`, `c${i % 20}.json`);
    const temporary = `${target}.${i}.tmp`;
    const handle = await open(temporary, 'w');
    await handle.writeFile(body);
    await handle.datasync();
    await handle.close();
    await rename(temporary, target);
  }
  return now() - start;
}

/** Sequential contact writes `from` … `to - 1` to 50 groups of 20 contacts; ms taken. */
async function singleWrites(storage: NetworkStorage, from: number, to: number): Promise<number> {
  await storage.initialize();
  const start = now();
  for (let i = from; i < to; i++)
    await storage.saveContactContent('writes', `g${i % 50}`, `c${i % 20}`, { i, at: 'x'.repeat(40) });
  return now() - start;
}

/** Rounds the raw writes and FileSystemStorage's alternate in, so a change in the machine's load meets both alike. */
const WRITE_ROUNDS = 10;

const ms = (value: number) => `${round(value, 1)} ms`;
const times = (value: number, anchor: number) => `${(value / anchor).toFixed(2)}×`;

async function main(): Promise<void> {
  console.log(
    `bench:scale — ${GROUPS} groups × ${CONTACTS_PER_GROUP} contacts, median of ${REPEATS}; ${os.cpus().length} CPUs, node ${process.version}, load ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
  const postgres = measures('postgres') ? await startPostgres({ logger: quiet }) : undefined;
  const emulator = measures('gcs') || (WITH_MESH && measures('mesh')) ? await startStorageEmulatorProcess() : undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'spine-bench-scale-'));
  const results: Record<string, Record<Step, number>> = {};
  try {
    if (postgres) process.stderr.write('plain SQL…\n');
    const sql = postgres ? await plainSql(postgres.url) : BASSLINE_MS;
    if (postgres) {
      process.stderr.write('PostgresStorage…\n');
      results.postgres = await measureSteps(new PostgresStorage({ connectionString: postgres.url, logger: quiet }));
    }
    if (measures('filesystem')) {
      process.stderr.write('FileSystemStorage…\n');
      results.filesystem = await measureSteps(new FileSystemStorage({ basePath: path.join(dir, 'fs'), logger: quiet }));
    }
    if (emulator && measures('gcs')) {
      process.stderr.write('GcsStorage…\n');
      await emulatorClient(emulator.url).createBucket('bench-scale');
      results.gcs = await measureSteps(
        new GcsStorage({ bucket: 'bench-scale', storage: emulatorClient(emulator.url), logger: quiet }),
      );
    }
    if (measures('memory')) {
      process.stderr.write('MemoryStorage…\n');
      results.memory = await measureSteps(new MemoryStorage({ logger: quiet }));
    }
    if (WITH_MESH && measures('mesh')) {
      process.stderr.write('mesh…\n');
      const mesh = await startLocalMesh({ logger: quiet, scheduler: false });
      const pubsub = new PubSub({ projectId: mesh.settings.projectId, apiEndpoint: mesh.env.PUBSUB_EMULATOR_HOST });
      const spine = meshClient(mesh, pubsub, emulatorClient(mesh.env.STORAGE_EMULATOR_HOST!), 'bench.scale', {
        flushTimeoutMs: 300_000,
      });
      try {
        results.mesh = await measureSteps(spine, () => spine.flush());
      } finally {
        await spine.close();
        await pubsub.close();
        await mesh.stop({ drain: false });
      }
    }

    if (Object.keys(results).length > 0) printSteps(results, sql);
    if (measures('writes')) await printSingleWrites(dir);
  } finally {
    emulator?.child.kill();
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function printSteps(results: Record<string, Record<Step, number>>, sql: Record<Step, number>): void {
  console.log(
    `\n${'step'.padEnd(30)} ${'Bassline pg'.padStart(12)} ${'plain SQL'.padStart(10)} ${Object.keys(results)
      .map((b) => b.padStart(12))
      .join(' ')}   postgres ÷ Bassline  postgres ÷ plain SQL`,
  );
  for (const step of STEPS) {
    console.log(
      `${STEP_NAMES[step].padEnd(30)} ${ms(BASSLINE_MS[step]).padStart(12)} ${ms(sql[step]).padStart(10)} ${Object.values(
        results,
      )
        .map((r) => ms(r[step]).padStart(12))
        .join(
          ' ',
        )}   ${results.postgres ? `${times(results.postgres[step], BASSLINE_MS[step]).padStart(19)}  ${times(results.postgres[step], sql[step]).padStart(20)}` : ''}`,
    );
  }
  console.log(
    'targets (issue 19): postgres ≤ 2× Bassline per step; mesh load and tag query ≤ 1,000 ms, snapshot ≤ 2,000 ms',
  );
}

const load = () => `load ${os.loadavg()[0]!.toFixed(2)}`;

async function printSingleWrites(dir: string): Promise<void> {
  process.stderr.write('single writes…\n');
  const rawDir = await mkdtemp(path.join(dir, 'raw-'));
  const files = new FileSystemStorage({ basePath: path.join(dir, 'fs-writes'), logger: quiet });
  let rawMs = 0;
  let filesMs = 0;
  const roundRatios: number[] = [];
  for (let round = 0; round < WRITE_ROUNDS; round++) {
    const [from, to] = [round, round + 1].map((r) => Math.floor((r * SINGLE_WRITES) / WRITE_ROUNDS)) as [
      number,
      number,
    ];
    const rawRoundMs = await rawAtomicWrites(rawDir, from, to, 256);
    const filesRoundMs = await singleWrites(files, from, to);
    rawMs += rawRoundMs;
    filesMs += filesRoundMs;
    roundRatios.push(rawRoundMs / filesRoundMs);
  }
  const raw = SINGLE_WRITES / (rawMs / 1000);
  const fsWrites = SINGLE_WRITES / (filesMs / 1000);
  const medianRatio = roundRatios.sort((a, b) => a - b)[Math.floor(roundRatios.length / 2)]!;
  const memoryWrites =
    MEMORY_WRITES / ((await singleWrites(new MemoryStorage({ logger: quiet }), 0, MEMORY_WRITES)) / 1000);
  console.log(
    `\nFileSystemStorage single writes ${fsWrites.toFixed(0)}/s vs raw atomic write + fdatasync + rename of the same files ${raw.toFixed(0)}/s: ${(fsWrites / raw).toFixed(2)}, median of ${WRITE_ROUNDS} alternating rounds ${medianRatio.toFixed(2)} (target ≥ 0.8), ${load()}`,
  );
  console.log(`MemoryStorage sequential writes ${memoryWrites.toFixed(0)}/s (target ≥ 100,000/s), ${load()}`);
}

runBench(main);
