/**
 * Snapshot time and peak memory at 1k, 10k and 100k contacts (100 per group), each measurement
 * in a fresh child process so its peak RSS (`process.resourceUsage().maxRSS`) is its own:
 *
 *   stream  DocumentStorage.writeSnapshot: groups read one at a time, encoded and streamed
 *   whole   the former way, for comparison: loadNetworkState, encode, one putSnapshot
 *   encode  baseline: the codec encoding (JSON.stringify) of the same state already in memory
 *
 * for FileSystemStorage (fsync on) and GcsStorage on the Storage emulator (its own process).
 * Peak RSS counts garbage V8 has not collected yet; the sampled peak heap is shown beside it.
 *
 *   npx tsx bench/snapshots.ts     (SPINE_BENCH_SIZES=1000,10000 SPINE_BENCH_GROUP_SIZE=100)
 *
 * Prints a table and one `RESULT {json}` line. Every child has a deadline; the run ends by itself.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import {
  DocumentStorage,
  encode,
  FileSystemStateStore,
  type Contact,
  type GroupState,
  type NetworkState,
  type StateStore,
} from '../shared';
import { GcsStateStore } from '../shared/entry/gcs';
import { newSnapshotId } from '../shared/snapshot-id';
import { mapWithConcurrency } from '../shared/util/concurrency';
import { emulatorClient, quiet, runBench, startStorageEmulatorProcess } from './support';

process.env.METADATA_SERVER_DETECTION ??= 'none';

const SIZES = (process.env.SPINE_BENCH_SIZES ?? '1000,10000,100000').split(',').map(Number);
const GROUP_SIZE = Number(process.env.SPINE_BENCH_GROUP_SIZE ?? 100);
const CHILD_DEADLINE_MS = Number(process.env.SPINE_BENCH_CHILD_DEADLINE_MS ?? 15 * 60_000);
const BUCKET = 'bench-snapshots';
const NETWORK = 'bench';

type Backend = 'fs' | 'gcs' | 'memory';
type Mode = 'stream' | 'whole' | 'encode';

interface ChildJob {
  backend: Backend;
  mode: Mode;
  contacts: number;
  basePath?: string;
  emulatorUrl?: string;
  prefix?: string;
}

interface Measurement {
  backend: Backend;
  mode: Mode;
  contacts: number;
  ms: number;
  bytes: number;
  /** RSS when the work began (after start-up and, for `encode`, after building the state). */
  rssBeforeMb: number;
  peakRssMb: number;
  /** Peak RSS less RSS before: what the work itself added, garbage not yet collected included. */
  addedMb: number;
  /** Largest V8 heap in use seen during the work (sampled every 5 ms): closer to what is really held. */
  peakHeapMb: number;
  /** For `stream`: time to tell when the network last changed (metadata only). */
  lastChangedMs?: number;
}

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
const peakRss = () => process.resourceUsage().maxRSS * 1024;

function contact(groupId: string, i: number): Contact {
  return {
    id: `c${i}`,
    groupId,
    blendMode: i % 10 === 0 ? 'merge' : 'accept-last',
    content: {
      value: i,
      label: `contact number ${i}`,
      tags: ['bench', `t${i % 7}`],
      at: new Date(1_700_000_000_000 + i),
      seen: new Set([i % 3, i % 5]),
    },
    name: `contact ${i}`,
    attributes: { weight: i % 100 },
  };
}

function groupOf(g: number, contacts: number): GroupState {
  const groupId = `g${String(g).padStart(5, '0')}`;
  const first = g * GROUP_SIZE;
  const members = Array.from({ length: Math.min(GROUP_SIZE, contacts - first) }, (_, k) => contact(groupId, first + k));
  return {
    group: {
      id: groupId,
      name: groupId,
      contactIds: members.map((c) => c.id),
      wireIds: [],
      subgroupIds: [],
      boundaryContactIds: [],
      attributes: { 'bassline.type': 'bench' },
    },
    contacts: new Map(members.map((c) => [c.id, c])),
    wires: new Map(),
  };
}

const groupCount = (contacts: number) => Math.ceil(contacts / GROUP_SIZE);

/** Writes the network straight into the store, many objects at once (DocumentStorage writes a group's contacts one by one). */
async function populate(store: StateStore, contacts: number): Promise<void> {
  const now = new Date();
  await store.putNetwork({
    id: NETWORK,
    rootGroupId: groupOf(0, contacts).group.id,
    currentGroupId: groupOf(0, contacts).group.id,
    createdAt: now,
    updatedAt: now,
  });
  await mapWithConcurrency(
    Array.from({ length: groupCount(contacts) }, (_, g) => g),
    4,
    async (g) => {
      const state = groupOf(g, contacts);
      await mapWithConcurrency([...state.contacts.values()], 16, (c) => store.putContact(NETWORK, state.group.id, c));
      await store.putGroup(NETWORK, { group: state.group, wires: state.wires });
    },
  );
}

function storeFor(job: ChildJob): StateStore {
  if (job.backend === 'fs') return new FileSystemStateStore({ basePath: job.basePath!, fsync: true });
  return new GcsStateStore({ bucket: BUCKET, prefix: job.prefix!, storage: emulatorClient(job.emulatorUrl!) });
}

/** One measurement, in this (child) process. */
async function measure(job: ChildJob): Promise<Measurement> {
  let peakHeap = 0;
  const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 5);
  const result = (started: bigint, bytes: number, rssBefore: number, extra: Partial<Measurement> = {}): Measurement => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    clearInterval(sampler);
    const peak = peakRss();
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    return {
      backend: job.backend,
      mode: job.mode,
      contacts: job.contacts,
      ms: Math.round(ms),
      bytes,
      rssBeforeMb: mb(rssBefore),
      peakRssMb: mb(peak),
      addedMb: mb(peak - rssBefore),
      peakHeapMb: mb(peakHeap),
      ...extra,
    };
  };
  if (job.mode === 'encode') {
    const groups = new Map<string, GroupState>();
    for (let g = 0; g < groupCount(job.contacts); g++) {
      const state = groupOf(g, job.contacts);
      groups.set(state.group.id, state);
    }
    const state: NetworkState = { groups, rootGroupId: 'g00000', currentGroupId: 'g00000' };
    global.gc?.();
    const rssBefore = Math.max(process.memoryUsage().rss, peakRss());
    peakHeap = 0;
    const started = process.hrtime.bigint();
    const text = encode(state);
    return result(started, Buffer.byteLength(text, 'utf8'), rssBefore);
  }
  const store = storeFor(job);
  const storage = new DocumentStorage(store, { logger: quiet });
  await storage.initialize();
  await storage.exists(NETWORK); // warms the client and connection
  const rssBefore = Math.max(process.memoryUsage().rss, peakRss());
  peakHeap = 0;
  const started = process.hrtime.bigint();
  if (job.mode === 'whole') {
    const state = await storage.loadNetworkState(NETWORK);
    const payload = encode(state);
    await store.putSnapshot(
      NETWORK,
      { id: newSnapshotId(), networkId: NETWORK, createdAt: new Date(), size: Buffer.byteLength(payload) },
      payload,
    );
    const measured = result(started, Buffer.byteLength(payload), rssBefore);
    await storage.close();
    return measured;
  }
  const { info } = await storage.writeSnapshot(NETWORK, 'bench');
  const measured = result(started, info.size ?? 0, rssBefore);
  const changedStarted = process.hrtime.bigint();
  await storage.lastChanged(NETWORK);
  measured.lastChangedMs = Math.round(Number(process.hrtime.bigint() - changedStarted) / 1e6);
  await storage.close();
  return measured;
}

function runChild(job: ChildJob): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, __filename, 'child', JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${job.backend}/${job.mode} at ${job.contacts} contacts passed its deadline of ${CHILD_DEADLINE_MS} ms`,
        ),
      );
    }, CHILD_DEADLINE_MS);
    let measurement: Measurement | undefined;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('CHILD ')) measurement = JSON.parse(line.slice(6)) as Measurement;
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (measurement) resolve(measurement);
      else
        reject(new Error(`${job.backend}/${job.mode} at ${job.contacts} contacts exited with ${code} and no result`));
    });
  });
}

async function main(): Promise<void> {
  // The emulator in its own process, so it shares neither the event loop nor the memory of what is measured.
  const { url, child: emulator } = await startStorageEmulatorProcess();
  const temp = await fs.mkdtemp(path.join(os.tmpdir(), 'spine-bench-snapshots-'));
  const results: Measurement[] = [];
  try {
    const client = emulatorClient(url);
    await client.createBucket(BUCKET);
    console.log(
      `snapshots: ${SIZES.join(', ')} contacts, ${GROUP_SIZE} per group; node ${process.version}, ${os.cpus().length} cpus; storage emulator ${url}`,
    );
    for (const contacts of SIZES) {
      const basePath = path.join(temp, `fs-${contacts}`);
      const prefix = `gcs-${contacts}/`;
      const started = Date.now();
      const fsStore = new FileSystemStateStore({ basePath, fsync: false });
      await fsStore.init();
      const gcsStore = new GcsStateStore({ bucket: BUCKET, prefix, storage: client });
      await gcsStore.init();
      await Promise.all([populate(fsStore, contacts), populate(gcsStore, contacts)]);
      console.log(`  populated ${contacts} contacts in ${Date.now() - started} ms`);
      const jobs: ChildJob[] = [
        { backend: 'memory', mode: 'encode', contacts },
        { backend: 'fs', mode: 'stream', contacts, basePath },
        { backend: 'fs', mode: 'whole', contacts, basePath },
        { backend: 'gcs', mode: 'stream', contacts, emulatorUrl: url, prefix },
        { backend: 'gcs', mode: 'whole', contacts, emulatorUrl: url, prefix },
      ];
      for (const job of jobs) {
        const measurement = await runChild(job);
        results.push(measurement);
        console.log(
          `  ${job.backend}/${job.mode}: ${measurement.ms} ms, peak RSS ${measurement.peakRssMb} MB (+${measurement.addedMb} MB), peak heap ${measurement.peakHeapMb} MB`,
        );
      }
      await fs.rm(basePath, { recursive: true, force: true });
    }
  } finally {
    emulator.kill('SIGTERM');
    await fs.rm(temp, { recursive: true, force: true });
  }

  console.log();
  console.log(
    `${'contacts'.padStart(8)}  ${'backend'.padEnd(7)} ${'method'.padEnd(7)} ${'ms'.padStart(7)} ${'MB out'.padStart(7)} ${'RSS before'.padStart(10)} ${'peak RSS'.padStart(9)} ${'added'.padStart(7)} ${'peak heap'.padStart(9)} ${'lastChanged ms'.padStart(14)}`,
  );
  for (const r of results) {
    console.log(
      `${String(r.contacts).padStart(8)}  ${r.backend.padEnd(7)} ${r.mode.padEnd(7)} ${String(r.ms).padStart(7)} ${mb(r.bytes).toFixed(1).padStart(7)} ${r.rssBeforeMb.toFixed(1).padStart(10)} ${r.peakRssMb.toFixed(1).padStart(9)} ${r.addedMb.toFixed(1).padStart(7)} ${r.peakHeapMb.toFixed(1).padStart(9)} ${(r.lastChangedMs === undefined ? '' : String(r.lastChangedMs)).padStart(14)}`,
    );
  }
  console.log(`RESULT ${JSON.stringify({ groupSize: GROUP_SIZE, node: process.version, results })}`);
}

if (process.argv[2] === 'child') {
  measure(JSON.parse(process.argv[3]!) as ChildJob).then(
    (measurement) => {
      process.stdout.write(`CHILD ${JSON.stringify(measurement)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
} else {
  runBench(main);
}
