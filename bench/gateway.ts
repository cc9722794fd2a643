/**
 * Gateway figures, on the local mesh, in one run:
 *  1. requests/s and p50/p99 of loadContactContent and saveContactContent through
 *     RemoteStorage → gateway → SpineStorage, against SpineStorage in this process;
 *  2. the gateway's memory (RSS) before and with 1,000 WebSocket subscribers, and how long one
 *     write takes to reach all of them;
 *  3. a consumer that never reads while large changes stream to it: the gateway's RSS stays
 *     bounded because the socket is closed once its buffer passes the bound.
 *
 *   npm run bench:gateway -- [--ops 2000] [--concurrency 32] [--subscribers 1000] [--paths 10]
 *
 * The gateway runs in a child process of its own, so its memory is its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { startLocalMesh } from '../cli/local-mesh';
import { startGatewayFromEnv } from '../gateway/from-env';
import { ApiKeys, GcsKeyRecords } from '../gateway/keys';
import { RemoteStorage } from '../shared/backends/remote';
import { silentLogger } from '../shared/log';
import { createStorageClient } from '../shared/mesh/storage-client';
import { SpineStorage } from '../shared/mesh/spine-storage';
import type { NetworkStorage } from '../shared/model';
import type { GatewayStats } from '../gateway/server';
import { inParallel, now, runBench, summarize } from './support';

interface ChildReport {
  url?: string;
  /** Set on the report that follows a full garbage collection (asked for with SIGUSR2). */
  collected?: boolean;
  rssMb: number;
  heapMb: number;
  /** Buffers and other memory outside the JS heap that V8 accounts for. */
  externalMb: number;
  stats?: GatewayStats;
}

/** Child mode: the gateway on the mesh in SPINE_BENCH_ENV, reporting its memory and counters every 200 ms. */
async function serve(): Promise<void> {
  const env = JSON.parse(process.env.SPINE_BENCH_ENV!) as Record<string, string>;
  const gateway = await startGatewayFromEnv({ ...env, PORT: '0' }, { logger: silentLogger });
  const report = (extra: Partial<ChildReport> = {}) => {
    const { rss, heapUsed, external } = process.memoryUsage();
    process.stdout.write(
      JSON.stringify({
        ...extra,
        rssMb: rss / 2 ** 20,
        heapMb: heapUsed / 2 ** 20,
        externalMb: external / 2 ** 20,
        stats: gateway.stats(),
      }) + '\n',
    );
  };
  report({ url: gateway.url });
  const timer = setInterval(report, 200);
  // Memory that is held, not garbage waiting for a collection: the parent asks before each reading.
  process.on('SIGUSR2', () => {
    (globalThis as { gc?: () => void }).gc?.();
    report({ collected: true });
  });
  process.once('SIGTERM', () => {
    clearInterval(timer);
    void gateway.stop().then(() => process.exit(0));
  });
}

async function timeOps(storage: NetworkStorage, ops: number, concurrency: number, op: (i: number) => Promise<unknown>) {
  const latencies: number[] = [];
  const started = now();
  await inParallel(ops, concurrency, async (i) => {
    const t = now();
    await op(i);
    latencies.push(now() - t);
  });
  const seconds = (now() - started) / 1000;
  return { perSecond: Math.round(ops / seconds), ...summarize(latencies) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'boolean' },
      ops: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '32' },
      subscribers: { type: 'string', default: '1000' },
      paths: { type: 'string', default: '10' },
    },
  });
  if (values.serve) {
    await serve();
    // Serves until SIGTERM (runBench would exit once main resolves).
    return new Promise<never>(() => undefined);
  }
  const ops = Number(values.ops);
  const concurrency = Number(values.concurrency);
  const subscriberCount = Number(values.subscribers);
  const pathCount = Number(values.paths);
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  process.env.SPINE_LOG_LEVEL ??= 'ERROR';

  const mesh = await startLocalMesh({ onFunctionsLog: () => undefined, scheduler: false, logger: silentLogger });
  const keys = new ApiKeys(new GcsKeyRecords(createStorageClient(mesh.settings), mesh.settings.bucket));
  const { key } = await keys.create({ name: 'bench', scopes: { '*': 'read-write' }, rateLimit: 100_000 });
  const spine = SpineStorage.fromEnv(mesh.env, { writerId: 'bench', logger: silentLogger });
  let child: ChildProcess | undefined;
  let stopping = false;
  const remotes: RemoteStorage[] = [];
  try {
    child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', __filename, '--serve'], {
      cwd: path.resolve(__dirname, '..'),
      env: { ...process.env, SPINE_BENCH_ENV: JSON.stringify(mesh.env) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let latest: ChildReport = { rssMb: 0, heapMb: 0, externalMb: 0 };
    let peakRssMb = 0;
    let onCollected: ((report: ChildReport) => void) | undefined;
    let started: ChildReport | undefined;
    const url = await new Promise<string>((resolve, reject) => {
      child!.once('exit', (code, signal) =>
        reject(new Error(`the gateway process ended early (${signal ?? `exit code ${code}`})`)),
      );
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        latest = JSON.parse(line) as ChildReport;
        peakRssMb = Math.max(peakRssMb, latest.rssMb);
        if (latest.collected) onCollected?.(latest);
        if (latest.url) {
          started = latest;
          resolve(latest.url);
        }
      });
    });
    child.once('exit', (code, signal) => {
      if (!stopping) console.error(`the gateway process ended (${signal ?? `exit code ${code}`})`);
    });
    const settle = () => new Promise((resolve) => setTimeout(resolve, 1_000));
    /** The gateway's memory after a full collection. */
    const held = () =>
      new Promise<ChildReport>((resolve) => {
        onCollected = resolve;
        child!.kill('SIGUSR2');
      });
    const remote = new RemoteStorage({ url, apiKey: key, logger: silentLogger });
    remotes.push(remote);

    // 1. Requests through the gateway and in process, same mesh, same contacts.
    const net = `bench-gw-${Date.now().toString(36)}`;
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => spine.saveContactContent(net, 'g', `c${i}`, { i, text: 'x'.repeat(200) })),
    );
    await spine.flush();
    const contact = (i: number) => `c${i % 100}`;
    await timeOps(remote, 200, concurrency, (i) => remote.loadContactContent(net, 'g', contact(i)));
    const rows = {
      'loadContactContent  SpineStorage (in process)': await timeOps(spine, ops, concurrency, (i) =>
        spine.loadContactContent(net, 'g', contact(i)),
      ),
      'loadContactContent  RemoteStorage → gateway': await timeOps(remote, ops, concurrency, (i) =>
        remote.loadContactContent(net, 'g', contact(i)),
      ),
      // Each write row starts once the mesh materialized the previous row's writes, so neither pays for the other's.
      'saveContactContent  SpineStorage (in process)': await timeOps(spine, ops, concurrency, (i) =>
        spine.saveContactContent(net, 'w1', contact(i), { i }),
      ),
      'saveContactContent  RemoteStorage → gateway': await spine
        .flush()
        .then(() => timeOps(remote, ops, concurrency, (i) => remote.saveContactContent(net, 'w2', contact(i), { i }))),
    };
    await remote.flush();
    console.log(
      `\ngateway figures (local mesh, ${ops} requests per row, ${concurrency} in flight; accepted writes, reads of materialized state):`,
    );
    for (const [name, r] of Object.entries(rows))
      console.log(`  ${name.padEnd(46)} ${String(r.perSecond).padStart(6)} req/s   p50 ${r.p50} ms   p99 ${r.p99} ms`);

    // 2. Many subscribers: one socket each, spread over a few paths (one mesh subscription per path).
    await settle();
    const idle = await held();
    const subNet = `${net}-subs`;
    for (let p = 0; p < pathCount; p++) await spine.saveContactContent(subNet, `p${p}`, 'v', 0);
    await spine.flush();
    const received = new Map<number, number[]>();
    const subscribeStarted = now();
    await inParallel(subscriberCount, 50, async (i) => {
      const client = new RemoteStorage({ url, apiKey: key, logger: silentLogger });
      remotes.push(client);
      await client.subscribe(`${subNet}/p${i % pathCount}`, (state) => {
        const value = state?.contacts.get('v')?.content as number | undefined;
        if (value !== undefined && value > 0) (received.get(value) ?? received.set(value, []).get(value)!).push(now());
      });
    });
    const subscribeMs = now() - subscribeStarted;
    await settle();
    const subscribed = await held();
    const fanOut: number[] = [];
    for (let round = 1; round <= 5; round++) {
      const sent = now();
      for (let p = 0; p < pathCount; p++) await spine.saveContactContent(subNet, `p${p}`, 'v', round);
      const deadline = now() + 30_000;
      while ((received.get(round)?.length ?? 0) < subscriberCount && now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      const arrivals = received.get(round) ?? [];
      if (arrivals.length < subscriberCount)
        throw new Error(
          `round ${round}: ${arrivals.length} of ${subscriberCount} subscribers heard of the change within 30 s`,
        );
      fanOut.push(...arrivals.map((at) => at - sent));
    }
    const fan = summarize(fanOut);
    console.log(
      `\n${subscriberCount} WebSocket subscribers on ${pathCount} paths (${latest.stats?.storageSubscriptions} mesh subscriptions in the gateway), subscribed in ${Math.round(subscribeMs)} ms:`,
    );
    const perSubscriberKb = (mb: number) => ((mb * 1024) / subscriberCount).toFixed(1);
    const heldMb = (r: ChildReport) => r.heapMb + r.externalMb;
    console.log(
      `  gateway RSS ${started!.rssMb.toFixed(0)} MB when it started, ${idle.rssMb.toFixed(0)} MB after the request rows, ${subscribed.rssMb.toFixed(0)} MB with the subscribers connected`,
    );
    console.log(
      `  after a full collection, JS heap + external ${heldMb(idle).toFixed(1)} → ${heldMb(subscribed).toFixed(1)} MB (${perSubscriberKb(heldMb(subscribed) - heldMb(idle))} KB held per subscriber)`,
    );
    console.log(
      `  a write reaches all ${subscriberCount} subscribers: p50 ${fan.p50} ms, p99 ${fan.p99} ms after it is accepted (5 rounds)`,
    );
    await Promise.all(remotes.splice(1).map((c) => c.close()));

    // 3. A consumer that never reads, under 256 KB changes.
    await settle();
    const slowNet = `${net}-slow`;
    const beforeSlow = await held();
    const droppedBefore = latest.stats?.slowConsumersDropped ?? 0;
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/subscribe`, {
      headers: { authorization: `Bearer ${key}` },
    });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send(JSON.stringify({ type: 'subscribe', sub: 'slow', path: slowNet }));
    await new Promise((resolve) => socket.once('message', resolve));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    (socket as unknown as { _socket: { pause(): void } })._socket.pause();
    peakRssMb = 0;
    const big = 'y'.repeat(256 * 1024);
    let sentBytes = 0;
    let writes = 0;
    for (; writes < 400 && (latest.stats?.slowConsumersDropped ?? 0) === droppedBefore; writes++) {
      await spine.saveContactContent(slowNet, 'g', `c${writes % 4}`, `${writes}${big}`, { wait: 'materialized' });
      // The group's state as delivered: every contact written so far.
      sentBytes += big.length * Math.min(writes + 1, 4);
    }
    const dropped = (latest.stats?.slowConsumersDropped ?? 0) > droppedBefore;
    (socket as unknown as { _socket: { resume(): void } })._socket.resume();
    const code = dropped ? await closed : undefined;
    console.log(
      `\na consumer that never reads, ${writes} changes of a group of up to 4 contacts of 256 KB (${(sentBytes / 2 ** 20).toFixed(1)} MB of state offered):`,
    );
    const afterSlow = await held();
    console.log(
      `  ${dropped ? `closed as a slow consumer (code ${code}) after ${writes} changes` : 'NOT closed'}; gateway RSS ${beforeSlow.rssMb.toFixed(0)} MB before, peak ${peakRssMb.toFixed(0)} MB; JS heap after a full collection ${beforeSlow.heapMb.toFixed(1)} → ${afterSlow.heapMb.toFixed(1)} MB`,
    );
    socket.terminate();
  } finally {
    await Promise.all(remotes.map((c) => c.close()));
    await spine.close();
    stopping = true;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await mesh.stop({ drain: false });
  }
}

runBench(main);
