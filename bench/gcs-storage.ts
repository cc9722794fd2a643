/**
 * GcsStorage against raw official-client object operations, on one storage emulator in one run:
 * contact writes/s, group loads/s, and a hot contact merged by two instances at once. The
 * emulator runs as its own process so it does not share the client's event loop.
 *
 *     npx tsx bench/gcs-storage.ts     (SPINE_BENCH_CONTACTS=2000 SPINE_BENCH_GROUPS=20)
 */
import type { Bucket } from '@google-cloud/storage';
import { GcsStorage } from '../shared/entry/gcs';
import { growSet } from '../shared';
import { emulatorClient, inParallel as inParallelOf, quiet, startStorageEmulatorProcess } from './support';

process.env.METADATA_SERVER_DETECTION ??= 'none';

const CONTACTS = Number(process.env.SPINE_BENCH_CONTACTS ?? 2_000);
const GROUPS = Number(process.env.SPINE_BENCH_GROUPS ?? 20);
const GROUP_LOADS = Number(process.env.SPINE_BENCH_GROUP_LOADS ?? 100);
const HOT_WRITES = Number(process.env.SPINE_BENCH_HOT_WRITES ?? 100);
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
    await Promise.all([storage.close(), other.close()]);
  } finally {
    child.kill('SIGTERM');
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
