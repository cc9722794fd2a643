/**
 * `npm run bench:mesh`: how long `spine dev` (what `npm start` runs) takes to be ready, how much
 * memory the whole mesh holds at rest, and how long a clean stop takes. Baseline in the same run:
 * the official Pub/Sub emulator started alone, which every start waits for.
 *
 * Sizes: BENCH_RUNS (3), BENCH_REST_MS (10000, how long the mesh idles before memory is read).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { commandLine, descendants } from '../cli/processes';
import { startPubSubEmulator } from '../emulators/pubsub';
import { int, now, quiet, round, sleep, summarize } from './support';

const ROOT = path.resolve(__dirname, '..');
const RUNS = int('BENCH_RUNS', 3);
const REST_MS = int('BENCH_REST_MS', 10_000);

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kib = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kib / 1024;
}

function partOf(command: string): string {
  if (command.includes('pubsub-emulator') || command.startsWith('java')) return 'Pub/Sub emulator (Java)';
  if (command.includes('functions/main.ts')) return 'functions process';
  if (command.includes('bin/spine.js')) return 'spine dev (emulators for Storage and Tasks, scheduler, dashboard)';
  return 'other';
}

interface RunFigures {
  readyMs: number;
  reportedReadyS: number;
  restRssMiB: number;
  byPart: Record<string, number>;
  stopMs: number;
}

async function runOnce(): Promise<RunFigures> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'spine-bench-mesh-'));
  const started = now();
  const child = spawn(
    path.join(ROOT, 'node_modules', '.bin', 'node'),
    ['bin/spine.js', 'dev', '--data-dir', dataDir, '--port-base', '0'],
    {
      cwd: ROOT,
      env: { ...process.env, PATH: `${path.join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}` },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  for (;;) {
    if (/Ctrl-C stops everything/.test(output)) break;
    if (child.exitCode !== null) throw new Error(`spine dev exited early:\n${output}`);
    await sleep(20);
  }
  const readyMs = now() - started;
  const reportedReadyS = Number(/ready in ([\d.]+) s/.exec(output)?.[1]);
  await sleep(REST_MS);
  const byPart: Record<string, number> = {};
  let restRssMiB = 0;
  for (const pid of [child.pid!, ...(await descendants(child.pid!))]) {
    const rss = await rssMiB(pid);
    const part = partOf(await commandLine(pid));
    byPart[part] = (byPart[part] ?? 0) + rss;
    restRssMiB += rss;
  }
  const stopping = now();
  process.kill(-child.pid!, 'SIGINT');
  await closed;
  const stopMs = now() - stopping;
  await rm(dataDir, { recursive: true, force: true });
  return { readyMs, reportedReadyS, restRssMiB, byPart, stopMs };
}

async function baseline(): Promise<{ startMs: number; restRssMiB: number }> {
  const started = now();
  const emulator = await startPubSubEmulator({ logger: quiet });
  const startMs = now() - started;
  await sleep(REST_MS);
  let restRssMiB = 0;
  for (const pid of [emulator.pid, ...(await descendants(emulator.pid))]) restRssMiB += await rssMiB(pid);
  await emulator.stop();
  return { startMs, restRssMiB };
}

async function main(): Promise<void> {
  const base = await baseline();
  const runs: RunFigures[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await runOnce());
  const ready = summarize(runs.map((run) => run.readyMs));
  const rss = summarize(runs.map((run) => run.restRssMiB));
  const stop = summarize(runs.map((run) => run.stopMs));
  const last = runs.at(-1)!;
  console.log(
    `\nspine dev, ${RUNS} runs on ${os.cpus().length} cores (memory read after ${REST_MS / 1000} s at rest)\n`,
  );
  console.log(
    `  ready (spawn to table)      p50 ${(ready.p50! / 1000).toFixed(1)} s   max ${(Math.max(...runs.map((r) => r.readyMs)) / 1000).toFixed(1)} s   (the mesh says: ${runs.map((r) => r.reportedReadyS).join(', ')} s)`,
  );
  console.log(
    `  baseline: Pub/Sub emulator alone starts in ${(base.startMs / 1000).toFixed(1)} s → mesh/baseline ${round(ready.p50! / base.startMs, 2)}×`,
  );
  console.log(
    `  memory at rest, whole tree  p50 ${round(rss.p50!, 0)} MiB   (Pub/Sub emulator alone ${round(base.restRssMiB, 0)} MiB → ${round(rss.p50! / base.restRssMiB, 2)}×)`,
  );
  for (const [part, mib] of Object.entries(last.byPart)) console.log(`    ${part.padEnd(70)} ${round(mib, 0)} MiB`);
  console.log(`  clean stop (Ctrl-C to exit) p50 ${(stop.p50! / 1000).toFixed(1)} s`);
  console.log(JSON.stringify({ bench: 'mesh-startup', runs, baseline: base }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
