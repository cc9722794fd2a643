/**
 * Task creates/s and task dispatches/s of the Cloud Tasks emulator, through the official
 * client, against a local HTTP target that answers 200 at once. Each dispatch scenario
 * fills a paused queue, resumes it and times the requests arriving at the target, so the
 * measured rate can be set against the queue's configured maxDispatchesPerSecond.
 *
 *     npx tsx bench/tasks-emulator.ts     (SPINE_BENCH_TASKS_CREATES=5000 SPINE_BENCH_TASKS_SECONDS=6)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudTasksClient } from '@google-cloud/tasks';
import { startTasksEmulator } from '../emulators/tasks';
import { waitUntil } from '../emulators/ports';
import { createLogger } from '../shared/log';

process.env.METADATA_SERVER_DETECTION ??= 'none';
// Start/stop lines only; per-task logs would cost more than the dispatches measured.
process.env.SPINE_LOG_LEVEL ??= 'WARNING';

const CREATES = Number(process.env.SPINE_BENCH_TASKS_CREATES ?? 5000);
/** Each dispatch scenario gets about this many seconds' worth of tasks at its configured rate. */
const SECONDS_PER_SCENARIO = Number(process.env.SPINE_BENCH_TASKS_SECONDS ?? 6);
const CREATE_CONCURRENCY = 64;
const RATES = [500, 100];
const parent = 'projects/bench/locations/local';

async function inParallel(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

async function startTarget(): Promise<{ url: string; arrivals: number[]; close: () => Promise<void> }> {
  const arrivals: number[] = [];
  const server = http.createServer((req, res) => {
    arrivals.push(performance.now());
    req.resume();
    res.writeHead(200).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/task`;
  return {
    url,
    arrivals,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function main(): Promise<void> {
  const emulator = await startTasksEmulator({ logger: createLogger('bench-tasks') });
  const client = new CloudTasksClient(emulator.clientOptions());
  const target = await startTarget();
  const results: Record<string, unknown>[] = [];
  try {
    // Creates: a paused queue, so the numbers are not shared with dispatching.
    const createQueue = `${parent}/queues/creates`;
    await client.createQueue({ parent, queue: { name: createQueue } });
    await client.pauseQueue({ name: createQueue });
    const body = Buffer.from(JSON.stringify({ network: 'bench', group: 'g1', window: 0 }));
    const createStart = performance.now();
    await inParallel(CREATES, CREATE_CONCURRENCY, (i) =>
      client.createTask({
        parent: createQueue,
        task: { name: `${createQueue}/tasks/t-${i}`, httpRequest: { url: target.url, body } },
      }),
    );
    const createSeconds = (performance.now() - createStart) / 1000;
    results.push({
      scenario: 'createTask (named, 64 in flight)',
      tasks: CREATES,
      seconds: round(createSeconds),
      perSecond: round(CREATES / createSeconds),
    });
    await client.deleteQueue({ name: createQueue });

    for (const rate of RATES) {
      const tasks = rate * SECONDS_PER_SCENARIO;
      const queue = `${parent}/queues/rate-${rate}`;
      const [created] = await client.createQueue({
        parent,
        queue: { name: queue, rateLimits: { maxDispatchesPerSecond: rate } },
      });
      const burst = created.rateLimits?.maxBurstSize ?? 0;
      await client.pauseQueue({ name: queue });
      await inParallel(tasks, CREATE_CONCURRENCY, () =>
        client.createTask({ parent: queue, task: { httpRequest: { url: target.url } } }),
      );
      target.arrivals.length = 0;
      const resumedAt = performance.now();
      await client.resumeQueue({ name: queue });
      await waitUntil(() => target.arrivals.length >= tasks, {
        timeoutMs: (tasks / rate) * 1000 * 3 + 10_000,
        intervalMs: 20,
        what: `${tasks} dispatches`,
      });
      const seconds = (target.arrivals.at(-1)! - resumedAt) / 1000;
      const stats = emulator.stats().queues[queue]!;
      results.push({
        scenario: `dispatch at maxDispatchesPerSecond=${rate} (burst ${burst})`,
        tasks,
        seconds: round(seconds),
        perSecond: round(tasks / seconds),
        ofConfigured: `${round((tasks / seconds / rate) * 100)}%`,
        // The most a token bucket lets through in that time: the full bucket plus the refill.
        bucketMaxPerSecond: round(rate + burst / seconds),
        peakInFlight: stats.peakInFlight,
        failedAttempts: stats.failedAttempts,
      });
      await client.deleteQueue({ name: queue });
    }
  } finally {
    await client.close();
    await emulator.stop();
    await target.close();
  }
  console.table(results);
  console.log(JSON.stringify({ bench: 'tasks-emulator', node: process.version, results }));
}

const round = (value: number) => Math.round(value * 10) / 10;

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
