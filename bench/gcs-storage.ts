/**
 * GcsStorage against raw official-client object operations, on one storage emulator in one run:
 * contact writes/s, group loads/s, and a hot contact merged by two instances at once; then a
 * network of 1,000 groups × 5 contacts saved, loaded, queried by tag and snapshotted, each step
 * with the requests the emulator answered and the CPU the client and the emulator spent. The
 * emulator runs as its own process so it does not share the client's event loop.
 *
 *     npx tsx bench/gcs-storage.ts     (SPINE_BENCH_CONTACTS=2000 SPINE_BENCH_GROUPS=20 SPINE_BENCH_NETWORK_GROUPS=1000)
 */
import type { Bucket } from '@google-cloud/storage';
import { GcsStorage } from '../shared/entry/gcs';
import { growSet } from '../shared';
import {
  emulatorClient,
  groupCpuSeconds,
  inParallel as inParallelOf,
  int,
  loadAverage,
  now,
  quiet,
  scaleGroup,
  startStorageEmulatorProcess,
} from './support';

process.env.METADATA_SERVER_DETECTION ??= 'none';

const CONTACTS = Number(process.env.SPINE_BENCH_CONTACTS ?? 2_000);
const GROUPS = Number(process.env.SPINE_BENCH_GROUPS ?? 20);
const GROUP_LOADS = Number(process.env.SPINE_BENCH_GROUP_LOADS ?? 100);
const HOT_WRITES = Number(process.env.SPINE_BENCH_HOT_WRITES ?? 100);
const NETWORK_GROUPS = int('SPINE_BENCH_NETWORK_GROUPS', 1_000);
const CONTACTS_PER_GROUP = 5;
const CONCURRENCY = 32;
const BUCKET = 'bench-gcs-storage';

function payload(i: number) {
  return { value: i, label: `contact ${i}`, tags: ['bench', `g${i % GROUPS}`], at: new Date(1_700_000_000_000 + i) };
}

const inParallel = (count: number, task: (i: number) => Promise<unknown>, concurrency = CONCURRENCY) =>
  inParallelOf(count, concurrency, task);

async function perSecond(count: number, run: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

async function rawGroupLoad(bucket: Bucket, prefix: string): Promise<unknown[]> {
  const [files] = await bucket.getFiles({ prefix });
  const out: unknown[] = [];
  await inParallel(
    files.length,
    async (i) => out.push(JSON.parse((await files[i]!.download())[0].toString('utf8'))),
    16,
  );
  return out;
}

const networkGroup = (i: number) => scaleGroup(i, CONTACTS_PER_GROUP);

/** Network-scale steps, each with its wall time, the emulator's requests and downloads, and the CPU of both processes. */
async function networkSteps(storage: GcsStorage, url: string, emulatorPid: number | undefined): Promise<void> {
  const stats = async () =>
    (await (await fetch(`${url}/_emulator/stats`)).json()) as { requests: number; downloads: number };
  const state = {
    groups: new Map(Array.from({ length: NETWORK_GROUPS }, (_, i) => [`g${i}`, networkGroup(i)] as const)),
    rootGroupId: 'g0',
    currentGroupId: 'g0',
  };
  const steps: Array<[string, () => Promise<unknown>]> = [
    ['saveNetworkState', () => storage.saveNetworkState('network', state)],
    ['loadNetworkState', () => storage.loadNetworkState('network')],
    ['loadNetworkState again', () => storage.loadNetworkState('network')],
    ['queryGroups by tag', () => storage.queryGroups('network', { tags: ['t3'] })],
    ['saveSnapshot', () => storage.saveSnapshot('network')],
  ];
  console.log(
    `\nnetwork of ${NETWORK_GROUPS} groups × ${CONTACTS_PER_GROUP} contacts (load ${loadAverage().join(' ')})`,
  );
  console.log(
    `${'step'.padEnd(24)} ${'ms'.padStart(8)} ${'requests'.padStart(9)} ${'downloads'.padStart(10)} ${'client CPU ms'.padStart(14)} ${'emulator CPU ms'.padStart(16)}`,
  );
  for (const [label, step] of steps) {
    const before = await stats();
    const emulatorCpu = groupCpuSeconds(emulatorPid);
    const cpu = process.cpuUsage();
    const start = now();
    await step();
    const ms = now() - start;
    const clientCpu = process.cpuUsage(cpu);
    const emulatorCpuMs = (groupCpuSeconds(emulatorPid) - emulatorCpu) * 1000;
    const after = await stats();
    console.log(
      `${label.padEnd(24)} ${ms.toFixed(0).padStart(8)} ${String(after.requests - before.requests - 1).padStart(9)} ${String(after.downloads - before.downloads).padStart(10)} ${((clientCpu.user + clientCpu.system) / 1000).toFixed(0).padStart(14)} ${emulatorCpuMs.toFixed(0).padStart(16)}`,
    );
  }
}

async function main(): Promise<void> {
  const { url, child } = await startStorageEmulatorProcess();
  try {
    const client = () => emulatorClient(url);
    const raw = client();
    await raw.createBucket(BUCKET);
    const bucket = raw.bucket(BUCKET);
    const storage = new GcsStorage({ bucket: BUCKET, prefix: 'spine/', storage: client(), logger: quiet });
    await storage.initialize();
    console.log(
      `GcsStorage vs raw client: ${CONTACTS} contacts in ${GROUPS} groups, ${GROUP_LOADS} group loads, concurrency ${CONCURRENCY}, emulator ${url}, node ${process.version}`,
    );

    const rawWrites = await perSecond(CONTACTS, () =>
      inParallel(CONTACTS, (i) =>
        bucket
          .file(`raw/g${i % GROUPS}/c${i}.json`)
          .save(JSON.stringify(payload(i)), { resumable: false, contentType: 'application/json' }),
      ),
    );
    const spineWrites = await perSecond(CONTACTS, () =>
      inParallel(CONTACTS, (i) => storage.saveContactContent('bench', `g${i % GROUPS}`, `c${i}`, payload(i))),
    );

    const rawLoads = await perSecond(GROUP_LOADS, () =>
      inParallel(GROUP_LOADS, (i) => rawGroupLoad(bucket, `raw/g${i % GROUPS}/`), 4),
    );
    const spineLoads = await perSecond(GROUP_LOADS, () =>
      inParallel(GROUP_LOADS, (i) => storage.loadGroupState('bench', `g${i % GROUPS}`), 4),
    );

    // One hot contact merged by two instances (two clients): every write is a compare-and-set.
    const other = new GcsStorage({
      bucket: BUCKET,
      prefix: 'spine/',
      storage: client(),
      logger: quiet,
      writerId: 'bench-b',
    });
    const hotWrites = await perSecond(HOT_WRITES * 2, async () => {
      await Promise.all([
        inParallel(HOT_WRITES, (i) =>
          storage.saveContactContent('bench', 'hot', 'set', growSet([`a${i}`]), { blendMode: 'merge' }),
        ),
        inParallel(HOT_WRITES, (i) =>
          other.saveContactContent('bench', 'hot', 'set', growSet([`b${i}`]), { blendMode: 'merge' }),
        ),
      ]);
    });
    const merged = (await storage.loadContactContent('bench', 'hot', 'set')) as { values: Set<string> };
    const races = storage.retryCounters().preconditionFailures + other.retryCounters().preconditionFailures;

    const row = (label: string, value: number, base?: number) =>
      console.log(
        `${label.padEnd(44)} ${value.toFixed(0).padStart(8)}/s${base === undefined ? '' : `   ${(value / base).toFixed(2).padStart(5)} × raw`}`,
      );
    row('raw object writes (one save per contact)', rawWrites);
    row('GcsStorage saveContactContent', spineWrites, rawWrites);
    row('raw group loads (list + download each)', rawLoads);
    row('GcsStorage loadGroupState', spineLoads, rawLoads);
    row('hot contact merges, 2 instances', hotWrites);
    console.log(
      `hot contact: ${merged.values.size}/${HOT_WRITES * 2} elements kept, ${races} compare-and-set races retried`,
    );
    await networkSteps(storage, url, child.pid);
    await Promise.all([storage.close(), other.close()]);
  } finally {
    child.kill('SIGTERM');
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
