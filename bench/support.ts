/**
 * What the benches share: timing and number helpers, process CPU accounting from /proc, the
 * mesh's SpineStorage clients, a Storage emulator in its own process, and how a bench ends.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { PubSub } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import type { LocalMesh } from '../cli/local-mesh';
import { GcsStorage } from '../shared/backends/gcs';
import type { GroupState } from '../shared/model';
import { silentLogger, type Logger } from '../shared/log';
import { SpineStorage, type SpineStorageOptions } from '../shared/mesh/spine-storage';

export const quiet: Logger = silentLogger;
export const now = () => performance.now();
export const round = (value: number, digits = 1) =>
  Number.isFinite(value) ? Math.round(value * 10 ** digits) / 10 ** digits : null;
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---- sizes from the environment

const positive = (name: string, raw: string) => {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name} must hold positive integers, not ${JSON.stringify(raw)}`);
  return value;
};
/** A positive integer from the environment variable `name`, or `fallback`. */
export const int = (name: string, fallback: number) => positive(name, process.env[name] ?? String(fallback));
/** Comma-separated positive integers from the environment variable `name`, or `fallback`. */
export const ints = (name: string, fallback: number[]) =>
  process.env[name] ? process.env[name]!.split(',').map((part) => positive(name, part.trim())) : fallback;

// ---- running tasks

/** Runs `task(0)` … `task(count - 1)`, at most `concurrency` at a time. */
export async function inParallel(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

// ---- statistics

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? NaN),
    mean: round(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1)),
  };
}

// ---- CPU accounting from /proc (Linux): seconds of user+system time per process group

let clockTicks: number | undefined;
/** Clock ticks per second of /proc's times; asked once, on first use. */
function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds used so far by every live process whose process group or pid is `pid` (NaN without one). */
export function groupCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return NaN;
  }
  let ticks = 0;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After the parenthesized command: state(0) ppid(1) pgrp(2) ... utime(11) stime(12).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(entry) !== pid && Number(fields[2]) !== pid) continue;
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The process ended while we looked.
    }
  }
  return ticks / clockTicksPerSecond();
}

/** CPU seconds of the mesh's processes at one moment (`at`, bench clock). */
export interface CpuMark {
  functions: number;
  pubsub: number;
  /** This process: the bench, the Storage and Tasks emulators. */
  bench: number;
  at: number;
}

export type CpuPart = Exclude<keyof CpuMark, 'at'>;

export function cpuMark(mesh: LocalMesh): CpuMark {
  const self = process.cpuUsage();
  return {
    functions: groupCpuSeconds(mesh.functions.pid),
    pubsub: groupCpuSeconds(mesh.emulators.pubsub?.pid),
    bench: (self.user + self.system) / 1e6,
    at: now(),
  };
}

// ---- the machine

export function machine() {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAverageAtStart: os.loadavg().map((v) => round(v, 2)),
  };
}

export const loadAverage = () => os.loadavg().map((v) => round(v, 2));

// ---- the mesh

/** A SpineStorage client of the mesh, its state on the mesh's bucket; `options` add to or override the defaults. */
export function meshClient(
  mesh: LocalMesh,
  pubsub: PubSub,
  storage: Storage,
  writerId: string,
  options: Partial<SpineStorageOptions> = {},
): SpineStorage {
  return new SpineStorage({
    projectId: mesh.settings.projectId,
    topicPrefix: mesh.settings.topicPrefix,
    state: new GcsStorage({ bucket: mesh.settings.bucket, prefix: mesh.settings.statePrefix, storage, logger: quiet }),
    pubsub,
    storage,
    bucket: mesh.settings.bucket,
    writerId,
    ...options,
    logger: quiet,
  });
}

/** Stops the mesh and ends the process (exit code 2) once the run has taken `deadlineMs` since `runStart`. */
export function stopAtDeadline(mesh: LocalMesh, deadlineMs: number, runStart: number): NodeJS.Timeout {
  const deadline = setTimeout(
    () => {
      console.error(`deadline of ${deadlineMs / 1000} s reached; stopping`);
      void mesh.stop().finally(() => process.exit(2));
    },
    deadlineMs - (now() - runStart),
  );
  deadline.unref();
  return deadline;
}

// ---- a Storage emulator in its own process

/** Starts `emulators/storage/main.ts` on a free port in its own process; resolves with its URL once it listens. */
export async function startStorageEmulatorProcess(): Promise<{ url: string; child: ChildProcess }> {
  const main = path.join(__dirname, '..', 'emulators', 'storage', 'main.ts');
  const child = spawn(process.execPath, [...process.execArgv, main, '--port', '0'], {
    env: { ...process.env, SPINE_LOG_LEVEL: 'WARNING' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('storage emulator did not start within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`storage emulator exited with ${code} before listening`)));
    lines.on('line', (line) => {
      const match = /^STORAGE_EMULATOR_HOST=(.+)$/.exec(line);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  return { url, child };
}

/** An official client of the emulator at `url`, without the client's own retries (the stores retry themselves). */
export const emulatorClient = (url: string) =>
  new Storage({ apiEndpoint: url, projectId: 'bench', retryOptions: { autoRetry: false } });

// ---- the end

/** Runs `main`, then exits: 0 when it resolved, 1 (after printing `failure` and the error) when it failed. */
export function runBench(main: () => Promise<void>, failure?: string): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      if (failure === undefined) console.error(error);
      else console.error(failure, error);
      process.exit(1);
    },
  );
}

/**
 * Group `g{i}` of the network-scale benches (bench:scale, bench/gcs-storage.ts): `contacts`
 * accept-last contacts and tags, author, type and a serial as attributes, so queries by tag and by
 * attribute each match a share of the groups. `revision` changes every contact's content.
 */
export function scaleGroup(i: number, contactsPerGroup: number, revision = 0): GroupState {
  const id = `g${i}`;
  const contacts = Array.from({ length: contactsPerGroup }, (_, k) => ({
    id: `c${k}`,
    groupId: id,
    content: { i, k, revision },
    blendMode: 'accept-last' as const,
  }));
  return {
    group: {
      id,
      name: `group ${i}`,
      contactIds: contacts.map((c) => c.id),
      wireIds: [],
      subgroupIds: [],
      boundaryContactIds: [],
      attributes: {
        'bassline.tags': ['scale', `t${i % 10}`],
        'bassline.author': `author-${i % 7}`,
        'bassline.type': `type-${i % 4}`,
        serial: i,
      },
    },
    contacts: new Map(contacts.map((c) => [c.id, c])),
    wires: new Map(),
  };
}
