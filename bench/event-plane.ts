/**
 * The event plane's throughput and latency on the local mesh, in one run (under 3 minutes):
 *
 *   1. raw ceiling: the same Pub/Sub emulator pushing to a no-op node:http handler (204 at once),
 *      unordered and ordered (as the mesh's materialize subscription is), N messages the size of
 *      a contact-write event published as fast as possible;
 *   2. end to end: M SpineStorage contact writes over G groups by W writers, every write issued at
 *      once (unbounded concurrency), from the first publish until every writer's `flush()`
 *      resolved, in `immediate` and in `batch` persistence (one network of each); publish-accept
 *      rate alone; Storage emulator requests and Pub/Sub messages per write and CPU per write of
 *      each process (from /proc);
 *      2b. a short burst with the materialize push routed through a pass-through proxy here, which
 *      times each handler call and counts pushes in flight (the push endpoint is restored after);
 *      2c. M writes to one hot group (one ordering key), and M writes over 1,000 groups;
 *   3. latency: publish → `subscribe()` callback for K writes at a steady modest rate, and
 *      publish → materialized (`{ wait: 'materialized' }`) for S sequential writes;
 *   4. ratios of (2) to (1), machine info.
 *
 * Prints a table and a final `RESULT {json}` line.
 *
 *     npm run bench:event-plane      (or: npx tsx bench/event-plane.ts)
 *
 * Sizes: SPINE_BENCH_RAW_MESSAGES=3000 SPINE_BENCH_WRITES=3000 SPINE_BENCH_GROUPS=20
 * SPINE_BENCH_MANY_GROUPS=1000 SPINE_BENCH_WRITERS=4 SPINE_BENCH_LATENCY_WRITES=300 SPINE_BENCH_LATENCY_RATE=20
 * SPINE_BENCH_SEQUENTIAL=100; SPINE_BENCH_PROFILE_DIR=<dir> makes the functions process write a
 * V8 CPU profile there (open it in Chrome DevTools) for a look at where the handler's time goes.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PubSub } from '@google-cloud/pubsub';
import { startLocalMesh, type LocalMesh } from '../cli/local-mesh';
import { createEvent, toPubSubMessage } from '../shared/events';
import { EventType } from '../shared/events/types';
import { createPubSubClient, createStorageClient } from '../shared/mesh/clients';
import type { SpineStorage } from '../shared/mesh/spine-storage';
import { pushEndpoint } from '../shared/provision';
import { HybridLogicalClock } from '../shared/hlc';
import type { GroupState } from '../shared/model';
import {
  cpuMark,
  int,
  loadAverage,
  machine,
  meshClient,
  now,
  quiet,
  round,
  sleep,
  stopAtDeadline,
  runBench,
  summarize,
  type CpuMark,
  type CpuPart,
} from './support';

// Read when clients are built and inherited by the functions process, so set before anything starts.
process.env.METADATA_SERVER_DETECTION ??= 'none';
process.env.SPINE_LOG_LEVEL ??= 'WARNING';

const RAW_MESSAGES = int('SPINE_BENCH_RAW_MESSAGES', 3_000);
const RAW_LATENCY_SAMPLES = 50;
/** Raw latency samples start after a random pause of up to this long. */
const RAW_LATENCY_JITTER_MS = 150;
const WRITES = int('SPINE_BENCH_WRITES', 3_000);
/** Groups of the main burst; also the ordering keys of the ordered raw variant. */
const GROUPS = int('SPINE_BENCH_GROUPS', 20);
const RAW_ORDERING_KEYS = GROUPS;
const WRITERS = int('SPINE_BENCH_WRITERS', 4);
/** Groups of the wide burst (2c). */
const MANY_GROUPS = int('SPINE_BENCH_MANY_GROUPS', 1_000);
/** Distinct contacts per group: each is overwritten WRITES / (GROUPS * CONTACTS_PER_GROUP) times. */
const CONTACTS_PER_GROUP = 10;
/** Writes of the proxy-timed burst (2b). */
const HANDLER_WRITES = 600;
/** Writes of the one-group burst (2c). */
const HOT_GROUP_WRITES = WRITES;
const LATENCY_WRITES = int('SPINE_BENCH_LATENCY_WRITES', 300);
const LATENCY_RATE = int('SPINE_BENCH_LATENCY_RATE', 20);
const SEQUENTIAL = int('SPINE_BENCH_SEQUENTIAL', 100);
/** When set, the functions process writes a V8 CPU profile (.cpuprofile) there on exit. */
const PROFILE_DIR = process.env.SPINE_BENCH_PROFILE_DIR;
/** Each phase gives up after this long and reports what it saw. */
const PHASE_TIMEOUT_MS = 60_000;
/** The whole run is cut off here (the brief: under 3 minutes). */
const DEADLINE_MS = 175_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function cpuSince(start: CpuMark, end: CpuMark, events: number) {
  const wall = (end.at - start.at) / 1000;
  const part = (key: CpuPart) => {
    const seconds = end[key] - start[key];
    return {
      cpuSeconds: round(seconds, 2),
      coreShare: round(seconds / wall, 2),
      cpuMsPerEvent: round((seconds * 1000) / events, 2),
    };
  };
  // The Storage and Tasks emulators run inside this (the bench's) process.
  return {
    wallSeconds: round(wall, 2),
    functions: part('functions'),
    pubsubEmulator: part('pubsub'),
    benchAndStorageEmulator: part('bench'),
  };
}

// ---- 1. raw push ceiling

interface RawResult {
  variant: string;
  messages: number;
  received: number;
  duplicates: number;
  publishSeconds: number | null;
  publishPerSecond: number | null;
  seconds: number | null;
  receivedPerSecond: number | null;
  maxInFlight: number;
  /** CPU the Pub/Sub emulator spent per message delivered (publish + push). */
  emulatorCpuMsPerMessage: number | null;
}

type NoopEndpoint = Awaited<ReturnType<typeof startNoopEndpoint>>;

/** A push endpoint that reads the body and answers 204 at once; counts unique message ids. */
async function startNoopEndpoint() {
  let onMessage: (id: string) => void = () => undefined;
  let inFlight = 0;
  let maxInFlight = 0;
  const server = http.createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const match = /"messageId"\s*:\s*"([^"]+)"/.exec(body);
      res.writeHead(204).end();
      inFlight--;
      onMessage(match?.[1] ?? '?');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/push`,
    listen(callback: (id: string) => void) {
      onMessage = callback;
    },
    resetInFlight() {
      maxInFlight = 0;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A message the size and shape of a real contact-write event. */
function sampleMessage(index: number) {
  const event = createEvent(
    EventType.ContactWritten,
    {
      networkId: 'bench-raw',
      groupId: `g${index % GROUPS}`,
      contactId: `c${index % CONTACTS_PER_GROUP}`,
      content: { writer: 0, i: index, label: `contact ${index}`, tags: ['bench'] },
      stamp: new HybridLogicalClock('bench.raw').tick(),
      writerId: 'bench.raw',
      seq: index + 1,
    },
    { source: '//superspine/writers/bench.raw' },
  );
  return toPubSubMessage(event);
}

interface RawVariant {
  label: string;
  /** Ordering keys used; 0 = an unordered subscription and no keys. */
  keys: number;
  messages: number;
}

async function rawCeiling(
  mesh: LocalMesh,
  pubsub: PubSub,
  endpoint: NoopEndpoint,
  { label, keys, messages }: RawVariant,
): Promise<RawResult> {
  const ordered = keys > 0;
  const suffix = randomUUID().slice(0, 8);
  const [topic] = await pubsub.createTopic(`bench-raw-${suffix}`);
  const [subscription] = await topic.createSubscription(`bench-raw-${suffix}`, {
    pushConfig: { pushEndpoint: endpoint.url },
    ackDeadlineSeconds: 60,
    enableMessageOrdering: ordered,
  });
  const publisher = pubsub.topic(topic.name, {
    messageOrdering: ordered,
    batching: { maxMessages: 100, maxMilliseconds: 5 },
  });
  const template = sampleMessage(0);
  const seen = new Set<string>();
  let duplicates = 0;
  let lastAt = NaN;
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  endpoint.listen((id) => {
    if (seen.has(id)) duplicates++;
    else seen.add(id);
    lastAt = now();
    if (seen.size >= messages) done();
  });
  endpoint.resetInFlight();
  const cpuStart = cpuMark(mesh);
  const start = now();
  let published: number;
  let cpuEnd: ReturnType<typeof cpuMark>;
  try {
    await Promise.all(
      Array.from({ length: messages }, (_, i) =>
        publisher.publishMessage({
          data: template.data,
          attributes: { ...template.attributes },
          ...(ordered ? { orderingKey: `bench-raw/g${i % keys}` } : {}),
        }),
      ),
    );
    published = now();
    await withTimeout(all, PHASE_TIMEOUT_MS, `raw ${label} delivery`).catch((error: Error) =>
      console.error(`  ! ${error.message} (${seen.size} received)`),
    );
  } finally {
    cpuEnd = cpuMark(mesh);
    endpoint.listen(() => undefined);
    await subscription.delete().catch(() => undefined);
    await topic.delete().catch(() => undefined);
  }
  const seconds = (lastAt - start) / 1000;
  return {
    variant: label,
    messages,
    received: seen.size,
    duplicates,
    publishSeconds: round((published - start) / 1000, 2),
    publishPerSecond: round(messages / ((published - start) / 1000), 0),
    seconds: round(seconds, 2),
    receivedPerSecond: round(seen.size / seconds, 0),
    maxInFlight: endpoint.maxInFlight,
    emulatorCpuMsPerMessage: round(((cpuEnd.pubsub - cpuStart.pubsub) * 1000) / Math.max(1, seen.size), 2),
  };
}

/** One message at a time: publish → no-op push handler (ordered subscription), and publish → streaming pull. */
async function rawLatency(pubsub: PubSub, endpoint: NoopEndpoint) {
  const suffix = randomUUID().slice(0, 8);
  const [topic] = await pubsub.createTopic(`bench-rawlat-${suffix}`);
  const publisher = pubsub.topic(topic.name, {
    messageOrdering: true,
    batching: { maxMessages: 100, maxMilliseconds: 5 },
  });
  const template = sampleMessage(0);
  const push: number[] = [];
  const pull: number[] = [];
  const [pushSubscription] = await topic.createSubscription(`bench-rawlat-push-${suffix}`, {
    pushConfig: { pushEndpoint: endpoint.url },
    enableMessageOrdering: true,
  });
  try {
    let arrived: () => void = () => undefined;
    endpoint.listen(() => arrived());
    for (let i = 0; i < RAW_LATENCY_SAMPLES; i++) {
      // At a random moment, so the emulator's delivery cadence is sampled at every phase.
      await sleep(Math.random() * RAW_LATENCY_JITTER_MS);
      const t = now();
      const got = new Promise<void>((resolve) => (arrived = resolve));
      await publisher.publishMessage({
        data: template.data,
        attributes: { ...template.attributes },
        orderingKey: 'bench-rawlat',
      });
      await withTimeout(got, 10_000, 'raw push latency sample');
      push.push(now() - t);
    }
  } finally {
    endpoint.listen(() => undefined);
    await pushSubscription.delete().catch(() => undefined);
  }
  const [pullSubscription] = await topic.createSubscription(`bench-rawlat-pull-${suffix}`, {
    enableMessageOrdering: true,
  });
  try {
    let arrived: () => void = () => undefined;
    pullSubscription.on('message', (message: { ack(): void }) => {
      message.ack();
      arrived();
    });
    // Let the streaming pull open before timing.
    await sleep(500);
    for (let i = 0; i < RAW_LATENCY_SAMPLES; i++) {
      await sleep(Math.random() * RAW_LATENCY_JITTER_MS);
      const t = now();
      const got = new Promise<void>((resolve) => (arrived = resolve));
      await publisher.publishMessage({
        data: template.data,
        attributes: { ...template.attributes },
        orderingKey: 'bench-rawlat',
      });
      await withTimeout(got, 10_000, 'raw pull latency sample');
      pull.push(now() - t);
    }
  } finally {
    await pullSubscription.close().catch(() => undefined);
    await pullSubscription.delete().catch(() => undefined);
    await topic.delete().catch(() => undefined);
  }
  return { samples: RAW_LATENCY_SAMPLES, pushMs: summarize(push), streamingPullMs: summarize(pull) };
}

function storageDelta(mesh: LocalMesh, events: number) {
  const stats = mesh.emulators.storage!.stats();
  const per = (value: number) => round(value / events, 2);
  return {
    requests: stats.requests,
    downloads: stats.downloads,
    objectWrites: stats.objectWrites,
    writesByKind: stats.writesByKind,
    preconditionFailures: stats.preconditionFailures,
    rateLimited: stats.rateLimited,
    requestsPerEvent: per(stats.requests),
    downloadsPerEvent: per(stats.downloads),
    objectWritesPerEvent: per(stats.objectWrites),
    /** Objects written most in this phase (a hot object caps throughput at ~1 write/s in the cloud). */
    hottestObjects: Object.entries(stats.writesByObject)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([name, count]) => `${name.replace(/^[^/]+\//, '')}=${count}`),
  };
}

// ---- 2. end-to-end throughput

/** `count` contact writes spread over the writers, all issued at once; resolves when all are accepted. */
async function writeBurst(
  writers: SpineStorage[],
  network: string,
  count: number,
  offset: number,
  groups = GROUPS,
): Promise<number> {
  const perWriter = Math.ceil(count / writers.length);
  let accepted = 0;
  await Promise.all(
    writers.flatMap((writer, w) =>
      Array.from({ length: Math.max(0, Math.min(perWriter, count - w * perWriter)) }, async (_, i) => {
        const n = offset + w * perWriter + i;
        const group = `g${n % groups}`;
        const contact = `c${Math.floor(n / groups) % CONTACTS_PER_GROUP}`;
        await writer.saveContactContent(network, group, contact, {
          writer: w,
          n,
          label: `contact ${n}`,
          tags: ['bench'],
        });
        accepted++;
      }),
    ),
  );
  return accepted;
}

async function endToEnd(
  mesh: LocalMesh,
  writers: SpineStorage[],
  network: string,
  functionLog: LogCounter,
  mode: 'immediate' | 'batch',
) {
  // Warm-up, untimed: the network and every group exist and the functions are JIT-warm.
  await Promise.all(
    Array.from({ length: GROUPS }, (_, g) =>
      writers[g % writers.length]!.saveContactContent(network, `g${g}`, 'warm', g, { wait: 'materialized' }),
    ),
  );

  mesh.emulators.storage!.resetStats();
  functionLog.reset();
  const messagesBefore = publishedMessages(writers);
  const cpuStart = cpuMark(mesh);
  const start = now();
  const accepted = await writeBurst(writers, network, WRITES, 0);
  const acceptedAt = now();
  let flushError: string | undefined;
  await Promise.all(writers.map((writer) => writer.flush(PHASE_TIMEOUT_MS))).catch((error: Error) => {
    flushError = error.message.slice(0, 300);
  });
  const materializedAt = now();
  const cpu = cpuSince(cpuStart, cpuMark(mesh), WRITES);
  const messages = publishedMessages(writers) - messagesBefore;
  return {
    mode,
    writes: WRITES,
    /** Events the writers published for them: bundles make this far fewer than the writes. */
    messages,
    writesPerMessage: round(WRITES / messages, 1),
    groups: GROUPS,
    writers: writers.length,
    contactsPerGroup: CONTACTS_PER_GROUP,
    accepted,
    publishAcceptSeconds: round((acceptedAt - start) / 1000, 2),
    publishAcceptPerSecond: round(accepted / ((acceptedAt - start) / 1000), 0),
    materializedSeconds: round((materializedAt - start) / 1000, 2),
    materializedPerSecond: flushError ? null : round(WRITES / ((materializedAt - start) / 1000), 1),
    /** Materialization rate once publishing was done (the backlog draining). */
    drainAfterAcceptSeconds: round((materializedAt - acceptedAt) / 1000, 2),
    flushError,
    storage: storageDelta(mesh, WRITES),
    cpu,
    functionWarnings: functionLog.snapshot(),
  };
}

/** Contact-write events the writers published (each client counts its own). */
function publishedMessages(writers: SpineStorage[]): number {
  return writers.reduce((sum, writer) => sum + writer.stats().contactWriteEvents, 0);
}

/** A burst of `writes` over `groups` groups of a network: one group is one ordering key, pushed one message at a time. */
async function burst(writers: SpineStorage[], network: string, writes: number, groups: number, offset: number) {
  const messagesBefore = publishedMessages(writers);
  const start = now();
  await writeBurst(writers, network, writes, offset, groups);
  const acceptedAt = now();
  let flushError: string | undefined;
  await Promise.all(writers.map((writer) => writer.flush(PHASE_TIMEOUT_MS))).catch((error: Error) => {
    flushError = error.message.slice(0, 300);
  });
  const seconds = (now() - start) / 1000;
  const messages = publishedMessages(writers) - messagesBefore;
  return {
    writes,
    groups,
    messages,
    writesPerMessage: round(writes / messages, 1),
    publishAcceptPerSecond: round(writes / ((acceptedAt - start) / 1000), 0),
    materializedSeconds: round(seconds, 2),
    materializedPerSecond: flushError ? null : round(writes / seconds, 1),
    flushError,
  };
}

// ---- 2b. the materialize push handler's own time, seen from a pass-through proxy

/**
 * Points the mesh's materialize subscription at a proxy in this process for a short burst, to
 * see how many pushes the emulator keeps in flight and how long each handler call takes.
 * The push endpoint is restored afterwards. The proxy adds its own hop, so the burst's rate is
 * reported apart from the main figure.
 */
async function handlerTiming(mesh: LocalMesh, pubsub: PubSub, writers: SpineStorage[], network: string) {
  const target = new URL(mesh.functions.urls.materialize!);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const durations: number[] = [];
  const statuses: Record<string, number> = {};
  let inFlight = 0;
  let maxInFlight = 0;
  let busySince = NaN;
  let busyMs = 0;
  let twoInFlightSince = NaN;
  let twoInFlightMs = 0;
  const proxy = http.createServer((req, res) => {
    const start = now();
    if (inFlight === 0) busySince = start;
    inFlight++;
    if (inFlight === 2) twoInFlightSince = start;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const upstream = http.request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers, agent },
      (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
        response.on('end', () => {
          const end = now();
          durations.push(end - start);
          statuses[String(response.statusCode)] = (statuses[String(response.statusCode)] ?? 0) + 1;
          if (inFlight === 2) twoInFlightMs += end - twoInFlightSince;
          inFlight--;
          if (inFlight === 0) busyMs += end - busySince;
          if (inFlight === 2) twoInFlightSince = end;
        });
      },
    );
    upstream.on('error', () => {
      inFlight--;
      res.writeHead(502).end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyBase = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const spec = mesh.topology.subscriptions.materialize;
  // The mesh's relay delivers the materialize subscription: pointed at the proxy for this burst.
  const restore = mesh.relay.redirect(spec.name, pushEndpoint(proxyBase, mesh.settings.projectId, spec.topic));
  try {
    // The switch is in effect once a write goes through the proxy.
    await writers[0]!.saveContactContent(network, 'g0', 'warm', 'proxy', { wait: 'materialized' });
    durations.length = 0;
    busyMs = 0;
    twoInFlightMs = 0;
    maxInFlight = 0;
    const start = now();
    await writeBurst(writers, network, HANDLER_WRITES, WRITES);
    let flushError: string | undefined;
    await Promise.all(writers.map((writer) => writer.flush(PHASE_TIMEOUT_MS))).catch((error: Error) => {
      flushError = error.message.slice(0, 300);
    });
    const wallMs = now() - start;
    return {
      writes: HANDLER_WRITES,
      pushes: durations.length,
      statuses,
      maxInFlight,
      handlerMs: summarize(durations),
      /** Share of the burst with at least one push in flight, and with two. */
      busyShare: round(busyMs / wallMs, 2),
      twoInFlightShare: round(twoInFlightMs / wallMs, 2),
      materializedPerSecondViaProxy: flushError ? null : round(HANDLER_WRITES / (wallMs / 1000), 1),
      flushError,
    };
  } finally {
    restore();
    await new Promise<void>((resolve) => {
      proxy.close(() => resolve());
      proxy.closeAllConnections();
    });
    agent.destroy();
  }
}

// ---- 3. latency

async function latency(
  mesh: LocalMesh,
  writer: SpineStorage,
  watcher: SpineStorage,
  network: string,
  functionLog: LogCounter,
) {
  const group = 'latency';
  const contact = 'probe';
  const token = randomUUID().slice(0, 8);
  // The group exists before timing, so the first sample pays no creation.
  await writer.saveContactContent(network, group, contact, { token, seq: -1 }, { wait: 'materialized' });

  const sentAt: number[] = [];
  const seenAt: number[] = [];
  let directlySeen = 0;
  let highest = -1;
  let notifications = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const unsubscribe = await watcher.subscribe(`${network}/${group}`, (state: GroupState | null) => {
    const at = now();
    notifications++;
    const content = state?.contacts.get(contact)?.content as { token?: string; seq?: number } | undefined;
    if (!content || content.token !== token || typeof content.seq !== 'number' || content.seq < 0) return;
    if (seenAt[content.seq] === undefined) directlySeen++;
    // The state includes every earlier write (accept-last): each is visible from now on.
    for (let s = highest + 1; s <= content.seq; s++) seenAt[s] ??= at;
    highest = Math.max(highest, content.seq);
    if (highest >= LATENCY_WRITES - 1) done();
  });
  // A streaming pull needs a moment to open; let the first notification of the warm write pass.
  await sleep(1_000);

  mesh.emulators.storage!.resetStats();
  functionLog.reset();
  const cpuStart = cpuMark(mesh);
  const interval = 1000 / LATENCY_RATE;
  const start = now();
  const publishes: Promise<void>[] = [];
  const acceptMs: number[] = [];
  for (let seq = 0; seq < LATENCY_WRITES; seq++) {
    const due = start + seq * interval;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    sentAt[seq] = now();
    publishes.push(
      writer
        .saveContactContent(network, group, contact, { token, seq })
        .then(() => void acceptMs.push(now() - sentAt[seq]!)),
    );
  }
  await Promise.all(publishes);
  await withTimeout(all, PHASE_TIMEOUT_MS, 'latency notifications').catch((error: Error) =>
    console.error(`  ! ${error.message} (${highest + 1} seen)`),
  );
  const cpu = cpuSince(cpuStart, cpuMark(mesh), LATENCY_WRITES);
  const storage = storageDelta(mesh, LATENCY_WRITES);
  await unsubscribe();
  await writer.flush(PHASE_TIMEOUT_MS).catch(() => undefined);
  const samples = sentAt.flatMap((sent, seq) => (seenAt[seq] === undefined ? [] : [seenAt[seq]! - sent]));

  // Publish → materialized, one write at a time.
  const sequential: number[] = [];
  const seqStart = now();
  for (let i = 0; i < SEQUENTIAL && now() - seqStart < PHASE_TIMEOUT_MS; i++) {
    const t = now();
    await writer.saveContactContent(network, 'sequential', contact, { i }, { wait: 'materialized' });
    sequential.push(now() - t);
  }
  return {
    notify: {
      writes: LATENCY_WRITES,
      ratePerSecond: LATENCY_RATE,
      seen: samples.length,
      seenDirectly: directlySeen,
      coalesced: samples.length - directlySeen,
      notifications,
      ms: summarize(samples),
      publishAcceptMs: summarize(acceptMs),
      storage,
      cpu,
    },
    materialized: {
      writes: sequential.length,
      ms: summarize(sequential),
      perSecond: round(sequential.length / ((now() - seqStart) / 1000), 1),
    },
  };
}

// ---- functions log: warnings and errors by message

class LogCounter {
  private counts = new Map<string, number>();
  line(line: string): void {
    try {
      const entry = JSON.parse(line) as { severity?: string; message?: string };
      if (entry.severity !== 'WARNING' && entry.severity !== 'ERROR') return;
      const key = `${entry.severity}: ${entry.message}`;
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    } catch {
      const key = `raw: ${line.slice(0, 80)}`;
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    }
  }
  reset(): void {
    this.counts.clear();
  }
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}

// ---- main

function table(rows: Array<[string, string | number | null | undefined]>): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value ?? '-'}`).join('\n');
}

async function main(): Promise<void> {
  const runStart = now();
  const info = machine();
  console.log(
    `event-plane bench: node ${info.node}, ${info.cpus} cpus (${info.cpuModel}), load ${info.loadAverageAtStart.join(' ')}`,
  );

  const functionLog = new LogCounter();
  const meshStart = now();
  const run = randomUUID().slice(0, 8);
  const network = `bench-${run}`;
  // The same mesh persists this network in batches (one write per group per window, 1 s).
  const batchNetwork = `bench-batch-${run}`;
  // As `npm start` runs it: with a data dir, so accepted messages are journaled (SPINE_BENCH_JOURNAL=0: without).
  const dataDir =
    process.env.SPINE_BENCH_JOURNAL === '0' ? undefined : await mkdtemp(path.join(os.tmpdir(), 'spine-bench-'));
  const mesh = await startLocalMesh({
    logger: quiet,
    ...(dataDir ? { dataDir } : {}),
    onFunctionsLog: (line) => functionLog.line(line),
    functionsEnv: {
      SPINE_PERSIST_OVERRIDES: JSON.stringify({ [batchNetwork]: 'batch' }),
      ...(PROFILE_DIR
        ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${PROFILE_DIR}`.trim() }
        : {}),
    },
  });
  const meshStartSeconds = round((now() - meshStart) / 1000, 1);
  console.log(
    `mesh up in ${meshStartSeconds} s (pubsub ${mesh.emulators.pubsub!.address}, functions pid ${mesh.functions.pid})`,
  );

  const deadline = stopAtDeadline(mesh, DEADLINE_MS, runStart);

  const pubsub = createPubSubClient(mesh.settings);
  const storage = createStorageClient(mesh.settings);
  const clients: SpineStorage[] = [];
  const endpoint = await startNoopEndpoint();
  try {
    console.log('1. raw push ceiling ...');
    // Untimed: the emulator's JVM warms up on its first few thousand messages.
    await rawCeiling(mesh, pubsub, endpoint, { label: 'warm-up', keys: 0, messages: 1_000 });
    const raw = [
      await rawCeiling(mesh, pubsub, endpoint, { label: 'unordered', keys: 0, messages: RAW_MESSAGES }),
      await rawCeiling(mesh, pubsub, endpoint, {
        label: `ordered, ${RAW_ORDERING_KEYS} keys`,
        keys: RAW_ORDERING_KEYS,
        messages: RAW_MESSAGES,
      }),
      await rawCeiling(mesh, pubsub, endpoint, {
        label: 'ordered, 1 key',
        keys: 1,
        messages: Math.min(RAW_MESSAGES, 1_000),
      }),
    ];
    const rawLat = await rawLatency(pubsub, endpoint);

    console.log('2. end-to-end materialized writes ...');
    const writers = Array.from({ length: WRITERS }, (_, w) =>
      meshClient(mesh, pubsub, storage, `bench-writer-${w}`, {
        flushTimeoutMs: PHASE_TIMEOUT_MS,
        persistOverrides: { [batchNetwork]: 'batch' },
      }),
    );
    clients.push(...writers);
    await Promise.all(writers.map((w) => w.initialize()));
    const e2e = await endToEnd(mesh, writers, network, functionLog, 'immediate');
    const batched = await endToEnd(mesh, writers, batchNetwork, functionLog, 'batch');
    const handler = await handlerTiming(mesh, pubsub, writers, network);
    const hot = await burst(writers, network, HOT_GROUP_WRITES, 1, WRITES + HANDLER_WRITES);
    const wide = await burst(writers, network, WRITES, MANY_GROUPS, WRITES + HANDLER_WRITES + HOT_GROUP_WRITES);

    console.log('3. latency ...');
    const watcher = meshClient(mesh, pubsub, storage, 'bench-watcher', { flushTimeoutMs: PHASE_TIMEOUT_MS });
    clients.push(watcher);
    await watcher.initialize();
    const lat = await latency(mesh, writers[0]!, watcher, network, functionLog);

    const [unordered, ordered, oneKey] = raw as [RawResult, RawResult, RawResult];
    const ratio = (a: number | null, b: number | null) => (a && b ? round(a / b, 3) : null);
    // The ceiling: the faster of the two multi-key variants, so the ratios are not flattered.
    const ceiling = Math.max(unordered.receivedPerSecond ?? 0, ordered.receivedPerSecond ?? 0) || null;
    const ratios = {
      immediateVsRawCeiling: ratio(e2e.materializedPerSecond, ceiling),
      batchVsRawCeiling: ratio(batched.materializedPerSecond, ceiling),
      notifyP50VsRawPushP50: ratio(lat.notify.ms.p50, rawLat.pushMs.p50),
      materializedVsRawOrderedPush: ratio(e2e.materializedPerSecond, ordered.receivedPerSecond),
      materializedVsRawUnorderedPush: ratio(e2e.materializedPerSecond, unordered.receivedPerSecond),
      oneGroupVsRawOneKeyPush: ratio(hot.materializedPerSecond, oneKey.receivedPerSecond),
      manyGroupsVsRawCeiling: ratio(wide.materializedPerSecond, ceiling),
      publishAcceptVsRawPublish: ratio(e2e.publishAcceptPerSecond, ordered.publishPerSecond),
      sequentialMaterializedP50VsRawPushP50: ratio(lat.materialized.ms.p50, rawLat.pushMs.p50),
    };
    /** What one push handler call costs if the emulator keeps 2 requests in flight (Little's law). */
    const impliedHandlerMs =
      e2e.materializedPerSecond && e2e.writesPerMessage
        ? round((2 * 1000) / (e2e.materializedPerSecond / e2e.writesPerMessage), 1)
        : null;
    const endToEndRows = (r: typeof e2e): Array<[string, string]> => [
      [
        `${r.mode}: writes`,
        `${r.writes} over ${r.groups} groups x ${r.contactsPerGroup} contacts, ${r.writers} writers, all issued at once`,
      ],
      ['  events published', `${r.messages} (${r.writesPerMessage} writes per event)`],
      ['  publish-accept writes/s', `${r.publishAcceptPerSecond}  (${r.publishAcceptSeconds} s)`],
      [
        '  MATERIALIZED writes/s',
        `${r.materializedPerSecond ?? 'FAILED'}  (${r.materializedSeconds} s to flush()${r.flushError ? `: ${r.flushError}` : ''})`,
      ],
      [
        '  storage requests / write',
        `${r.storage.requestsPerEvent}  (downloads ${r.storage.downloadsPerEvent}, object writes ${r.storage.objectWritesPerEvent}, 412s ${r.storage.preconditionFailures})`,
      ],
      [
        '  cpu ms / write',
        `functions ${r.cpu.functions.cpuMsPerEvent}, pubsub emulator ${r.cpu.pubsubEmulator.cpuMsPerEvent}, bench+storage emulator ${r.cpu.benchAndStorageEmulator.cpuMsPerEvent}`,
      ],
      [
        '  cores busy',
        `functions ${r.cpu.functions.coreShare}, pubsub emulator ${r.cpu.pubsubEmulator.coreShare}, bench+storage emulator ${r.cpu.benchAndStorageEmulator.coreShare} (of ${info.cpus})`,
      ],
      ['  function warnings', JSON.stringify(r.functionWarnings)],
    ];
    const burstRow = (label: string, r: typeof hot): [string, string] => [
      label,
      `materialized ${r.materializedPerSecond ?? 'FAILED'} writes/s (${r.writes} writes in ${r.materializedSeconds} s, ${r.messages} events${r.flushError ? `: ${r.flushError}` : ''})`,
    ];
    const ms = (s: ReturnType<typeof summarize>) =>
      `p50 ${s.p50}  p95 ${s.p95}  p99 ${s.p99}  max ${s.max} ms  (n=${s.n})`;

    console.log('');
    console.log('1. raw emulator push ceiling (no-op node:http handler, 204 at once; same emulator)');
    console.log(
      table([
        ...raw.map((r): [string, string] => [
          `${r.variant}: received/s`,
          `${r.receivedPerSecond}  (${r.received}/${r.messages} in ${r.seconds} s, ${r.duplicates} dup, max ${r.maxInFlight} in flight; publish ${r.publishPerSecond}/s; emulator cpu ${r.emulatorCpuMsPerMessage} ms/msg)`,
        ]),
        ['one at a time: publish -> push', `${ms(rawLat.pushMs)}  (random moments)`],
        ['one at a time: publish -> streaming pull', ms(rawLat.streamingPullMs)],
      ]),
    );
    console.log('2. end to end through the mesh (SpineStorage -> Pub/Sub -> materialize -> Storage emulator -> ack)');
    console.log(
      table([
        ...endToEndRows(e2e),
        ['  implied handler time', `${impliedHandlerMs} ms per event (2 pushes in flight)`],
        ...endToEndRows(batched),
        [`2b. via proxy (${handler.writes} writes)`, `handler ${ms(handler.handlerMs)}`],
        [
          '',
          `max ${handler.maxInFlight} pushes in flight; >=1 in flight ${handler.busyShare} of the time, 2 in flight ${handler.twoInFlightShare}; ${handler.materializedPerSecondViaProxy} writes/s; statuses ${JSON.stringify(handler.statuses)}`,
        ],
        burstRow('2c. one hot group', hot),
        burstRow(`    ${wide.groups} groups`, wide),
      ]),
    );
    console.log('3. latency');
    console.log(
      table([
        ['publish -> subscribe() callback', ms(lat.notify.ms)],
        [
          '',
          `${lat.notify.writes} writes at ${lat.notify.ratePerSecond}/s; ${lat.notify.seenDirectly} seen as their own value, ${lat.notify.coalesced} first seen through a later one; ${lat.notify.notifications} callbacks`,
        ],
        ['publish -> accepted', ms(lat.notify.publishAcceptMs)],
        ['publish -> materialized (sequential)', `${ms(lat.materialized.ms)}; ${lat.materialized.perSecond} writes/s`],
        ['storage requests / event', `${lat.notify.storage.requestsPerEvent} (with the subscriber's group reload)`],
      ]),
    );
    console.log('4. ratios (mesh / raw emulator)');
    console.log(
      table([
        [`IMMEDIATE materialized writes/s / raw push ceiling (${ceiling} msg/s)`, ratios.immediateVsRawCeiling],
        ['BATCH materialized writes/s / raw push ceiling', ratios.batchVsRawCeiling],
        ['NOTIFY publish -> subscriber p50 / raw publish -> push p50', ratios.notifyP50VsRawPushP50],
        [`${wide.groups} groups materialized writes/s / raw push ceiling`, ratios.manyGroupsVsRawCeiling],
        ['materialized writes/s / raw ordered push msg/s', ratios.materializedVsRawOrderedPush],
        ['materialized writes/s / raw unordered push msg/s', ratios.materializedVsRawUnorderedPush],
        ['one-group materialized writes/s / raw 1-key push msg/s', ratios.oneGroupVsRawOneKeyPush],
        ['publish-accept writes/s / raw publish msg/s', ratios.publishAcceptVsRawPublish],
        ['sequential materialized p50 / raw push p50', ratios.sequentialMaterializedP50VsRawPushP50],
      ]),
    );
    const journal = mesh.journal?.stats();
    if (journal)
      console.log(
        `journal: ${journal.appends} messages appended in ${journal.fsyncs} fsyncs (${round(journal.appends / Math.max(1, journal.fsyncs), 1)} per fsync), ${journal.pending} not done, ${journal.compactions} compactions`,
      );
    const totalSeconds = round((now() - runStart) / 1000, 1);
    console.log(
      `machine: node ${info.node}, ${info.cpus} cpus ${info.cpuModel}, ${info.memoryGiB} GiB; load at start ${info.loadAverageAtStart.join(' ')}, at end ${os
        .loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}; run ${totalSeconds} s`,
    );
    const result = {
      machine: { ...info, loadAverageAtEnd: loadAverage() },
      meshStartSeconds,
      raw,
      rawLatency: rawLat,
      endToEnd: e2e,
      batch: batched,
      handlerViaProxy: handler,
      oneGroup: hot,
      manyGroups: wide,
      latency: lat,
      ratios,
      impliedHandlerMs,
      journal: journal ?? null,
      totalSeconds,
    };
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await endpoint.close();
    await pubsub.close().catch(() => undefined);
    await mesh.stop();
    clearTimeout(deadline);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

runBench(main, 'event-plane bench failed:');
