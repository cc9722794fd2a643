/**
 * Contact writes/s, group loads/s and peak memory of the embedded backends, 10k contacts.
 * Each backend runs in its own child process so peak RSS is its own; a raw baseline (the same
 * payloads written with plain JSON.stringify + writeFile / Map.set) runs in the same way.
 * Then the import time of the root entry against each subpath entry: the sources compiled to
 * CommonJS as the package ships them, each required in a fresh `node` process.
 *
 *     npm run bench:storage            (SPINE_BENCH_CONTACTS=10000 SPINE_BENCH_GROUPS=100 SPINE_BENCH_IMPORT_RUNS=5)
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile, readFile, readdir, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { FileSystemStorage } from '../shared/entry/filesystem';
import { MemoryStorage, type NetworkStorage } from '../shared/entry/memory';

const CONTACTS = Number(process.env.SPINE_BENCH_CONTACTS ?? 10_000);
const GROUPS = Number(process.env.SPINE_BENCH_GROUPS ?? 100);
const CONCURRENCY = 32;
const GROUP_LOADS = 2_000;
const IMPORT_RUNS = Number(process.env.SPINE_BENCH_IMPORT_RUNS ?? 5);
const REPO_ROOT = path.resolve(__dirname, '..');
/** Package specifier → its source, as package.json exports map them to dist/. */
const ENTRIES = [
  ['super-spine', 'shared/index.ts'],
  ['super-spine/memory', 'shared/entry/memory.ts'],
  ['super-spine/filesystem', 'shared/entry/filesystem.ts'],
  ['super-spine/gcs', 'shared/entry/gcs.ts'],
  ['super-spine/postgres', 'shared/entry/postgres.ts'],
  ['super-spine/mesh', 'shared/entry/mesh.ts'],
] as const;

const backends = ['raw-memory', 'memory', 'raw-fs', 'filesystem', 'filesystem-nofsync'] as const;
type Backend = (typeof backends)[number];

interface Result {
  backend: Backend;
  writesPerSecond: number;
  groupLoadsPerSecond: number;
  peakRssMiB: number;
}

function payload(i: number) {
  return { value: i, label: `contact ${i}`, tags: ['bench', `g${i % GROUPS}`], at: new Date(1_700_000_000_000 + i) };
}

async function inParallel(count: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

async function timed(run: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function runStorage(storage: NetworkStorage) {
  await storage.initialize();
  const writeSeconds = await timed(() =>
    inParallel(CONTACTS, (i) => storage.saveContactContent('bench', `g${i % GROUPS}`, `c${i}`, payload(i))),
  );
  const loadSeconds = await timed(() =>
    inParallel(GROUP_LOADS, (i) => storage.loadGroupState('bench', `g${i % GROUPS}`)),
  );
  await storage.close();
  return { writeSeconds, loadSeconds };
}

async function runRawFs(dir: string) {
  const writeSeconds = await timed(() =>
    inParallel(CONTACTS, async (i) => {
      const groupDir = path.join(dir, `g${i % GROUPS}`);
      await mkdir(groupDir, { recursive: true });
      await writeFile(path.join(groupDir, `c${i}.json`), JSON.stringify(payload(i)));
    }),
  );
  const loadSeconds = await timed(() =>
    inParallel(GROUP_LOADS, async (i) => {
      const groupDir = path.join(dir, `g${i % GROUPS}`);
      const names = await readdir(groupDir);
      await Promise.all(names.map(async (name) => JSON.parse(await readFile(path.join(groupDir, name), 'utf8'))));
    }),
  );
  return { writeSeconds, loadSeconds };
}

async function runRawMemory() {
  const groups = new Map<string, Map<string, string>>();
  const writeSeconds = await timed(() =>
    inParallel(CONTACTS, async (i) => {
      const key = `g${i % GROUPS}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = new Map()));
      group.set(`c${i}`, JSON.stringify(payload(i)));
    }),
  );
  const loadSeconds = await timed(() =>
    inParallel(GROUP_LOADS, async (i) => {
      const group = groups.get(`g${i % GROUPS}`)!;
      return [...group.values()].map((v) => JSON.parse(v));
    }),
  );
  return { writeSeconds, loadSeconds };
}

async function child(backend: Backend): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `spine-bench-${backend}-`));
  try {
    const { writeSeconds, loadSeconds } =
      backend === 'raw-memory'
        ? await runRawMemory()
        : backend === 'raw-fs'
          ? await runRawFs(dir)
          : await runStorage(
              backend === 'memory'
                ? new MemoryStorage()
                : new FileSystemStorage({ basePath: dir, fsync: backend === 'filesystem' }),
            );
    const result: Result = {
      backend,
      writesPerSecond: CONTACTS / writeSeconds,
      groupLoadsPerSecond: GROUP_LOADS / loadSeconds,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
    };
    process.stdout.write(JSON.stringify(result));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Compiles what `npm run build` compiles, file by file like tsc, into a temp dir that sees the repo's node_modules. */
async function compilePackage(): Promise<string> {
  const outDir = await mkdtemp(path.join(os.tmpdir(), 'spine-bench-imports-'));
  const { include } = JSON.parse(await readFile(path.join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as {
    include: string[];
  };
  const sources = await Promise.all(
    include.map(async (dir) =>
      (await readdir(path.join(REPO_ROOT, dir), { recursive: true })).map((file) => path.join(REPO_ROOT, dir, file)),
    ),
  );
  await build({
    entryPoints: sources.flat().filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts')),
    outbase: REPO_ROOT,
    outdir: outDir,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    logLevel: 'error',
  });
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  return outDir;
}

/** Runs in a fresh process: the time one require of the entry takes, and the npm packages it loaded. */
const IMPORT_PROBE = `
const start = performance.now();
require(process.argv[1]);
const importMs = performance.now() - start;
const packages = new Set(Object.keys(require.cache).map((file) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(file)?.[1]).filter(Boolean));
process.stdout.write(JSON.stringify({ importMs, packages: packages.size }));
`;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function measureImports(): Promise<void> {
  const outDir = await compilePackage();
  try {
    const samples = new Map<string, { ms: number[]; packages: number }>(
      ENTRIES.map(([name]) => [name, { ms: [], packages: 0 }]),
    );
    // Rounds interleave the entries so a noisy moment on the machine is spread over all of them.
    for (let round = 0; round < IMPORT_RUNS; round++) {
      for (const [name, source] of ENTRIES) {
        const file = path.join(outDir, source.replace(/\.ts$/, '.js'));
        const output = execFileSync(process.execPath, ['-e', IMPORT_PROBE, file], {
          encoding: 'utf8',
          env: { ...process.env, NODE_OPTIONS: '' },
        });
        const { importMs, packages } = JSON.parse(output) as { importMs: number; packages: number };
        const sample = samples.get(name)!;
        sample.ms.push(importMs);
        sample.packages = packages;
      }
    }
    const rootMs = median(samples.get('super-spine')!.ms);
    console.log(`\nimport time: compiled CommonJS, fresh node process each, median of ${IMPORT_RUNS}`);
    console.log('entry                    import ms   vs root   npm packages loaded');
    for (const [name] of ENTRIES) {
      const { ms, packages } = samples.get(name)!;
      const entryMs = median(ms);
      console.log(
        `${name.padEnd(24)} ${entryMs.toFixed(1).padStart(9)}   ${(entryMs / rootMs).toFixed(2).padStart(7)}   ${String(packages).padStart(19)}`,
      );
    }
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(
    `storage backends: ${CONTACTS} contacts in ${GROUPS} groups, ${GROUP_LOADS} group loads, concurrency ${CONCURRENCY}, node ${process.version}`,
  );
  const results: Result[] = backends.map((backend) => {
    const output = execFileSync(process.execPath, [...process.execArgv, __filename, '--child', backend], {
      encoding: 'utf8',
      env: { ...process.env, SPINE_LOG_LEVEL: 'SILENT' },
    });
    return JSON.parse(output) as Result;
  });
  const byName = new Map(results.map((r) => [r.backend, r]));
  const baselineOf = (b: Backend) =>
    b.startsWith('filesystem') || b === 'raw-fs' ? byName.get('raw-fs')! : byName.get('raw-memory')!;
  console.log('backend              writes/s   vs raw   group loads/s   vs raw   peak RSS MiB');
  for (const r of results) {
    const base = baselineOf(r.backend);
    console.log(
      `${r.backend.padEnd(20)} ${r.writesPerSecond.toFixed(0).padStart(8)}   ${(r.writesPerSecond / base.writesPerSecond).toFixed(2).padStart(6)}   ${r.groupLoadsPerSecond.toFixed(0).padStart(13)}   ${(r.groupLoadsPerSecond / base.groupLoadsPerSecond).toFixed(2).padStart(6)}   ${r.peakRssMiB.toFixed(0).padStart(12)}`,
    );
  }
  await measureImports();
}

if (process.argv[2] === '--child') {
  child(process.argv[3] as Backend).catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
