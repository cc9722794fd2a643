/**
 * State writes per contact write, `immediate` against `batch` persistence, on the local mesh, in
 * one run (under 4 minutes).
 *
 * One mesh serves both modes: its default persistence is `immediate`, and SPINE_PERSIST_OVERRIDES
 * makes the batch phases' networks `batch` (window SPINE_BENCH_WINDOW_MS, 2000 ms by default).
 * Every phase has its own network and its own client, and every contact of every network is
 * written once (untimed) before the phases, so the phases measure steady state (no group or
 * network records created) and writes one phase leaves behind never count in another.
 *
 * The scheduler runner is off (no hourly snapshot, health canary or minute sweep writing into a
 * phase); batch windows are flushed by their own Cloud Tasks. Batched writes that miss their
 * window's flush would wait for the minute sweep (`persist-interval`): when a batch flush is
 * still waiting SWEEP_AFTER_MS after its last write, the bench makes that job's request itself,
 * every SWEEP_EVERY_MS, and reports how many it made (`sweeps`).
 *
 * For each offered rate (20, 100, 400 writes/s by default) and each mode, one phase:
 *   - N contact writes over G groups × C contacts (round-robin over groups), paced by a timer
 *     (write i is due at start + i / rate) and not awaited one by one;
 *   - `flush()` of the writing client (its `persistOn`/`persistOverrides` match the mesh);
 *   - the Storage emulator's committed object mutations under `networks/{that network}/`,
 *     divided by N: state writes per contact write, split into contact objects, group records
 *     and network records; and again 1.5 s after the flush (late writes);
 *   - offered rate actually sent, accepted (by Pub/Sub) and materialized (N / first send to
 *     flushed), the time from the last write to flushed, CPU per write of each process, and a
 *     read-back check of every contact's last value.
 * For batch, the expected amplification: groups ÷ (rate × window) (at most 1), and
 * groups × windows touched ÷ N (the windows the send span covers).
 *
 * Prints a table and a final `RESULT {json}` line.
 *
 *     npm run bench:persistence      (or: npx tsx bench/persistence.ts)
 *
 * Sizes: SPINE_BENCH_RATES=20,100,400 SPINE_BENCH_WRITES=400,1000,1200 (one per rate, or one for
 * all) SPINE_BENCH_GROUPS=20 SPINE_BENCH_CONTACTS=10 SPINE_BENCH_WINDOW_MS=2000.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { startLocalMesh, type LocalMesh } from '../cli/local-mesh';
import { idToKey } from '../shared/ids';
import { createPubSubClient, createStorageClient } from '../shared/mesh/clients';
import type { SpineStorage } from '../shared/mesh/spine-storage';
import type { PersistOn } from '../shared/settings';
import {
  cpuMark,
  int,
  ints,
  loadAverage,
  machine as machineInfo,
  meshClient,
  now,
  quiet,
  round,
  runBench,
  sleep,
  stopAtDeadline,
  type CpuMark,
  type CpuPart,
} from './support';

// Read when clients are built and inherited by the functions process, so set before anything starts.
process.env.METADATA_SERVER_DETECTION ??= 'none';
process.env.SPINE_LOG_LEVEL ??= 'WARNING';

const RATES = ints('SPINE_BENCH_RATES', [20, 100, 400]);
const WRITES_LIST = ints('SPINE_BENCH_WRITES', [400, 1_000, 1_200]);
if (WRITES_LIST.length !== 1 && WRITES_LIST.length !== RATES.length)
  throw new Error('SPINE_BENCH_WRITES needs one count, or one per rate');
const writesAt = (index: number) => WRITES_LIST[WRITES_LIST.length === 1 ? 0 : index]!;
const GROUPS = int('SPINE_BENCH_GROUPS', 20);
const CONTACTS = int('SPINE_BENCH_CONTACTS', 10);
const WINDOW_MS = int('SPINE_BENCH_WINDOW_MS', 2_000);
/** How long a phase's flush may take. */
const FLUSH_TIMEOUT_MS = 40_000;
/**
 * A batch flush still waiting this long after its last write has writes that missed their
 * window's flush: from then on the bench makes the request of the scheduled sweep
 * (`persist-interval`, every minute in a deployment) every SWEEP_EVERY_MS, and reports it.
 */
const SWEEP_AFTER_MS = 3 * WINDOW_MS + 4_000;
const SWEEP_EVERY_MS = 3_000;
/** No phase starts after this much of the run (the brief: under 4 minutes in all). */
const SOFT_BUDGET_MS = 190_000;
/** Pause after a flush before the second look at the counters (late or stray writes). */
const SETTLE_MS = 1_500;
/** The whole run is cut off here (the brief: under 4 minutes). */
const DEADLINE_MS = 230_000;

function cpuMsPerWrite(start: CpuMark, end: CpuMark, writes: number) {
  const per = (key: CpuPart) => round(((end[key] - start[key]) * 1000) / writes, 2);
  return { functions: per('functions'), pubsubEmulator: per('pubsub'), benchStorageTasks: per('bench') };
}

// ---- persist's own account, from the functions' log (INFO: persist logs each flush; nothing per event)

interface PersistLine {
  at: number;
  message: string;
  path?: string;
  events?: number;
  groups?: number;
  window?: number;
  ms?: number;
  body?: { networkId?: string; groupId?: string; window?: number };
}

class PersistLog {
  readonly lines: PersistLine[] = [];
  line(raw: string): void {
    if (!raw.includes('"persisted group"') && !raw.includes('"persist finished"')) return;
    try {
      this.lines.push({ at: now(), ...(JSON.parse(raw) as Omit<PersistLine, 'at'>) });
    } catch {
      // Not ours.
    }
  }
  /** Flushes of `network` logged since `since` (bench clock). */
  summary(network: string, since: number, lastSendAt: number, lastSendWindow: number) {
    const lines = this.lines.filter((l) => l.at >= since);
    const groups = lines.filter((l) => l.message === 'persisted group' && l.path?.startsWith(`${network}/`));
    const calls = lines.filter((l) => l.message === 'persist finished' && l.body?.networkId === network);
    const working = calls.filter((l) => (l.groups ?? 0) > 0);
    const windows = [...new Set(groups.map((l) => l.window).filter((w): w is number => w !== undefined))].sort(
      (a, b) => a - b,
    );
    const perGroupWindow = new Map<string, number>();
    for (const l of groups)
      perGroupWindow.set(`${l.path}@${l.window}`, (perGroupWindow.get(`${l.path}@${l.window}`) ?? 0) + 1);
    return {
      /** Persist calls (window tasks) for this network, and those that found writes. */
      calls: calls.length,
      callsWithWrites: working.length,
      /** Time persist spent in the calls that found writes: total and the longest. */
      msWithWrites: working.reduce((sum, l) => sum + (l.ms ?? 0), 0),
      maxCallMs: working.reduce((max, l) => Math.max(max, l.ms ?? 0), 0),
      groupFlushes: groups.length,
      eventsFlushed: groups.reduce((sum, l) => sum + (l.events ?? 0), 0),
      /** A group flushed more than once for one window (concurrent flushes splitting its writes). */
      repeatedGroupWindows: [...perGroupWindow.values()].filter((n) => n > 1).length,
      windowsFlushed: windows.length,
      /** Windows after the last send's window that still had writes: arrival lag through materialize. */
      windowsAfterLastSend: windows.length ? windows[windows.length - 1]! - lastSendWindow : null,
      lastGroupFlushAfterLastSendMs: groups.length ? round(groups[groups.length - 1]!.at - lastSendAt, 0) : null,
    };
  }
}

// ---- state writes of one network, from the Storage emulator's counters

interface StateWrites {
  total: number;
  contactObjects: number;
  groupRecords: number;
  networkRecords: number;
  other: number;
  objectsWritten: number;
  /** The object written most often, and how often. */
  hottestObject: string | null;
  hottestWrites: number;
}

function stateWrites(mesh: LocalMesh, network: string): StateWrites {
  const prefix = `${mesh.settings.bucket}/${mesh.settings.statePrefix}networks/${idToKey(network)}/`;
  const out: StateWrites = {
    total: 0,
    contactObjects: 0,
    groupRecords: 0,
    networkRecords: 0,
    other: 0,
    objectsWritten: 0,
    hottestObject: null,
    hottestWrites: 0,
  };
  for (const [object, count] of Object.entries(mesh.emulators.storage!.stats().writesByObject)) {
    if (!object.startsWith(prefix)) continue;
    const rest = object.slice(prefix.length);
    out.total += count;
    out.objectsWritten += 1;
    if (/^groups\/[^/]+\/contacts\//.test(rest)) out.contactObjects += count;
    else if (/^groups\/[^/]+\/group\.json$/.test(rest)) out.groupRecords += count;
    else if (rest === 'metadata.json') out.networkRecords += count;
    else out.other += count;
    if (count > out.hottestWrites) {
      out.hottestWrites = count;
      out.hottestObject = rest;
    }
  }
  return out;
}

// ---- one phase: paced writes, flush, counters

const groupOf = (n: number) => `g${n % GROUPS}`;
const contactOf = (n: number) => `c${Math.floor(n / GROUPS) % CONTACTS}`;

interface PhaseResult {
  mode: PersistOn;
  network: string;
  offeredPerSecond: number;
  writes: number;
  groups: number;
  contactsPerGroup: number;
  /** Writes per second actually sent by the pacer (first to last send). */
  sentPerSecond: number | null;
  /** How far the pacer fell behind its schedule at worst. */
  maxPacerLagMs: number | null;
  acceptedPerSecond: number | null;
  /** N / (first send → flush resolved). */
  materializedPerSecond: number | null;
  sendSeconds: number | null;
  /** Last write sent → flush() resolved. */
  lastWriteToFlushedMs: number | null;
  /** Last write accepted by Pub/Sub → flush() resolved. */
  lastAcceptToFlushedMs: number | null;
  flushError?: string;
  /**
   * Sweeps (the persist-interval job's request) the bench made because batch writes were still
   * not flushed SWEEP_AFTER_MS after the last write; 0 when every window's own flush did it.
   */
  sweeps: number;
  firstSweepAfterLastWriteMs: number | null;
  stateWrites: StateWrites;
  stateWritesPerContactWrite: number | null;
  /** Further state writes within SETTLE_MS after the flush. */
  lateStateWrites: number;
  /** Peak per-object write rate of the phase: the hottest object's writes over the send span (writes/s). */
  hottestObjectWritesPerSecond: number | null;
  /** Requests and 412s of the whole Storage emulator (both networks; the other is idle). */
  storageRequestsPerWrite: number | null;
  preconditionFailures: number;
  rateLimited: number;
  cpuMsPerWrite: ReturnType<typeof cpuMsPerWrite>;
  /** Batch only: groups ÷ (rate × window), at most 1. */
  modelSimple?: number | null;
  /** Batch only: windows the send span touched, and groups × those windows ÷ N. */
  windowsTouched?: number;
  modelWindows?: number | null;
  /** Batch only: group-record writes per group (≈ flushes per group). */
  groupRecordWritesPerGroup?: number | null;
  /** Batch only: persist's log of the phase's flushes. */
  persist?: ReturnType<PersistLog['summary']>;
  /** Every contact holds the last value written to it. */
  verified: boolean;
  mismatches: number;
}

async function phase(
  mesh: LocalMesh,
  client: SpineStorage,
  persistLog: PersistLog,
  network: string,
  mode: PersistOn,
  rate: number,
  writes: number,
  tag: string,
): Promise<PhaseResult> {
  const storage = mesh.emulators.storage!;
  storage.resetStats();
  const cpuStart = cpuMark(mesh);
  const accepts: Promise<void>[] = [];
  let lastAcceptAt = NaN;
  let sent = 0;
  let maxLag = 0;
  const interval = 1000 / rate;
  const start = now();
  const firstWall = Date.now();
  const send = (n: number) => {
    const lag = now() - (start + n * interval);
    if (lag > maxLag) maxLag = lag;
    accepts.push(
      client
        .saveContactContent(network, groupOf(n), contactOf(n), { tag, n, label: `contact ${n}`, tags: ['bench'] })
        .then(() => {
          lastAcceptAt = now();
        }),
    );
  };
  // The pacer: every tick sends what is due by now, then sleeps until the next write is due.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(writes, Math.floor(((now() - start) * rate) / 1000) + 1);
      while (sent < due) send(sent++);
      if (sent >= writes) resolve();
      else setTimeout(tick, Math.max(0, start + sent * interval - now()));
    };
    tick();
  });
  const lastSendAt = now();
  const lastWall = Date.now();
  let flushError: string | undefined;
  let flush: FlushOutcome = { sweeps: 0, firstSweepAfterMs: null };
  try {
    await Promise.all(accepts);
    flush = await flushWithSweep(mesh, client, mode === 'batch');
    flushError = flush.error;
  } catch (error) {
    flushError = (error as Error).message.slice(0, 300);
  }
  const flushedAt = now();
  const cpu = cpuMsPerWrite(cpuStart, cpuMark(mesh), writes);
  const written = stateWrites(mesh, network);
  const stats = storage.stats();
  await sleep(SETTLE_MS);
  const late = stateWrites(mesh, network).total - written.total;

  // Read back: each contact holds the content of the last write to it (one writer, so the
  // highest n by clock order).
  const expected = new Map<string, number>();
  for (let n = 0; n < writes; n++) expected.set(`${groupOf(n)}/${contactOf(n)}`, n);
  let mismatches = 0;
  for (let g = 0; g < GROUPS; g++) {
    const state = await client.loadGroupState(network, `g${g}`);
    for (let c = 0; c < CONTACTS; c++) {
      const want = expected.get(`g${g}/c${c}`);
      if (want === undefined) continue;
      const content = state?.contacts.get(`c${c}`)?.content as { tag?: string; n?: number } | undefined;
      if (content?.tag !== tag || content.n !== want) mismatches++;
    }
  }

  const sendSeconds = (lastSendAt - start) / 1000;
  const result: PhaseResult = {
    mode,
    network,
    offeredPerSecond: rate,
    writes,
    groups: GROUPS,
    contactsPerGroup: CONTACTS,
    sentPerSecond: round((writes - 1) / sendSeconds, 1),
    maxPacerLagMs: round(maxLag, 1),
    acceptedPerSecond: round(writes / ((lastAcceptAt - start) / 1000), 1),
    materializedPerSecond: flushError ? null : round(writes / ((flushedAt - start) / 1000), 1),
    sendSeconds: round(sendSeconds, 2),
    lastWriteToFlushedMs: flushError ? null : round(flushedAt - lastSendAt, 0),
    lastAcceptToFlushedMs: flushError ? null : round(flushedAt - lastAcceptAt, 0),
    ...(flushError ? { flushError } : {}),
    sweeps: flush.sweeps,
    firstSweepAfterLastWriteMs:
      flush.firstSweepAfterMs === null ? null : round(flush.firstSweepAfterMs + (lastAcceptAt - lastSendAt), 0),
    stateWrites: written,
    stateWritesPerContactWrite: round(written.total / writes, 3),
    lateStateWrites: late,
    hottestObjectWritesPerSecond: round(written.hottestWrites / Math.max(sendSeconds, interval / 1000), 2),
    storageRequestsPerWrite: round(stats.requests / writes, 2),
    preconditionFailures: stats.preconditionFailures,
    rateLimited: stats.rateLimited,
    cpuMsPerWrite: cpu,
    verified: mismatches === 0 && !flushError,
    mismatches,
  };
  if (mode === 'batch') {
    const windowsTouched = Math.floor(lastWall / WINDOW_MS) - Math.floor(firstWall / WINDOW_MS) + 1;
    result.modelSimple = round(Math.min(1, GROUPS / ((rate * WINDOW_MS) / 1000)), 3);
    result.windowsTouched = windowsTouched;
    result.modelWindows = round(Math.min(writes, GROUPS * windowsTouched) / writes, 3);
    result.groupRecordWritesPerGroup = round(written.groupRecords / GROUPS, 2);
    result.persist = persistLog.summary(network, start, lastSendAt, Math.floor(lastWall / WINDOW_MS));
  }
  return result;
}

// ---- flush, with the scheduled sweep as the backstop for batch writes that missed their window

interface FlushOutcome {
  error?: string;
  /** Sweeps the bench requested, and when the first was (ms after the flush began). */
  sweeps: number;
  firstSweepAfterMs: number | null;
}

async function sweep(mesh: LocalMesh): Promise<void> {
  // The body and headers of the persist-interval job (scheduler/jobs.ts).
  const response = await fetch(`${mesh.functions.urls.persist!.replace(/\/+$/, '')}/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'User-Agent': 'Google-Cloud-Scheduler', 'X-CloudScheduler': 'true' },
    body: JSON.stringify({ all: true }),
  });
  await response.arrayBuffer();
}

async function flushWithSweep(mesh: LocalMesh, client: SpineStorage, batched: boolean): Promise<FlushOutcome> {
  const outcome: FlushOutcome = { sweeps: 0, firstSweepAfterMs: null };
  const start = now();
  let done = false;
  const flushed = client.flush(FLUSH_TIMEOUT_MS).then(
    () => undefined,
    (error: Error) => {
      outcome.error = error.message.slice(0, 300);
    },
  );
  void flushed.finally(() => (done = true));
  if (batched) {
    let wait = SWEEP_AFTER_MS;
    while (!done) {
      const timer = sleep(wait);
      await Promise.race([flushed, timer]);
      if (done) break;
      outcome.sweeps += 1;
      outcome.firstSweepAfterMs ??= round(now() - start, 0);
      await sweep(mesh).catch(() => undefined);
      wait = SWEEP_EVERY_MS;
    }
  }
  await flushed;
  return outcome;
}

// ---- setup

/** Writes every contact of the network once and waits until they are materialized (untimed). */
async function warmUp(mesh: LocalMesh, client: SpineStorage, network: string, batched: boolean): Promise<FlushOutcome> {
  const writes: Promise<void>[] = [];
  for (let g = 0; g < GROUPS; g++)
    for (let c = 0; c < CONTACTS; c++)
      writes.push(client.saveContactContent(network, `g${g}`, `c${c}`, { tag: 'warm-up' }));
  await Promise.all(writes);
  const outcome = await flushWithSweep(mesh, client, batched);
  if (outcome.error) throw new Error(`warm-up of ${network} did not finish: ${outcome.error}`);
  return outcome;
}

function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = [
    headers,
    ...rows.map((row) => row.map((cell) => (cell === null || cell === undefined ? '-' : String(cell)))),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells
    .map(
      (row) => '  ' + row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '),
    )
    .join('\n');
}

async function main(): Promise<void> {
  const runStart = now();
  const { platform: _platform, ...machine } = machineInfo();
  console.log(
    `persistence bench: node ${machine.node}, ${machine.cpus} cpus (${machine.cpuModel}), load ${machine.loadAverageAtStart.join(' ')}`,
  );

  // One network per phase, so writes a phase leaves behind never count in (or hold up) another.
  const suffix = randomUUID().slice(0, 8);
  const plan = RATES.flatMap((rate, index) =>
    (['immediate', 'batch'] as const).map((mode) => ({
      mode,
      rate,
      writes: writesAt(index),
      network: `persist-${mode === 'batch' ? 'bat' : 'imm'}-${rate}-${suffix}`,
    })),
  );
  const overrides: Record<string, PersistOn> = Object.fromEntries(
    plan.filter((p) => p.mode === 'batch').map((p) => [p.network, 'batch' as const]),
  );

  const meshStart = now();
  const persistLog = new PersistLog();
  const mesh = await startLocalMesh({
    logger: quiet,
    scheduler: false,
    onFunctionsLog: (line) => persistLog.line(line),
    // INFO: persist logs each flush (materialize logs nothing per event at INFO).
    functionsEnv: {
      SPINE_PERSIST_OVERRIDES: JSON.stringify(overrides),
      SPINE_BATCH_WINDOW_MS: String(WINDOW_MS),
      SPINE_LOG_LEVEL: 'INFO',
    },
  });
  const meshStartSeconds = round((now() - meshStart) / 1000, 1);
  console.log(
    `mesh up in ${meshStartSeconds} s: default persistence ${mesh.settings.persistOn}; ${Object.keys(overrides).length} networks batch by SPINE_PERSIST_OVERRIDES (window ${WINDOW_MS} ms); ${GROUPS} groups x ${CONTACTS} contacts per network; one network per phase`,
  );

  const deadline = stopAtDeadline(mesh, DEADLINE_MS, runStart);

  const pubsub = createPubSubClient(mesh.settings);
  const storage = createStorageClient(mesh.settings);
  const clients: SpineStorage[] = [];
  const newClient = async (name: string) => {
    // As the mesh has it: immediate by default, the batch networks overridden.
    const client = meshClient(mesh, pubsub, storage, name, {
      persistOn: mesh.settings.persistOn,
      persistOverrides: overrides,
      flushTimeoutMs: FLUSH_TIMEOUT_MS,
    });
    clients.push(client);
    await client.initialize();
    return client;
  };
  const skipped: string[] = [];
  try {
    const warmStart = now();
    const warmUps = await Promise.all(
      plan.map(async (p) =>
        warmUp(mesh, await newClient(`bench-warm-${p.mode}-${p.rate}`), p.network, p.mode === 'batch'),
      ),
    );
    const warmUpSweeps = warmUps.reduce((sum, w) => sum + w.sweeps, 0);
    console.log(
      `warm-up: every contact of the ${plan.length} networks written once, in ${round((now() - warmStart) / 1000, 1)} s${warmUpSweeps ? ` (${warmUpSweeps} sweeps needed)` : ''}`,
    );

    const results: PhaseResult[] = [];
    for (const p of plan) {
      if (now() - runStart > SOFT_BUDGET_MS) {
        skipped.push(`${p.mode}@${p.rate}`);
        console.log(`  ${p.mode} at ${p.rate}/s: skipped (time budget)`);
        continue;
      }
      process.stdout.write(`  ${p.mode} at ${p.rate}/s, ${p.writes} writes ... `);
      const client = await newClient(`bench-${p.mode}-${p.rate}`);
      const result = await phase(
        mesh,
        client,
        persistLog,
        p.network,
        p.mode,
        p.rate,
        p.writes,
        `${p.mode}-${p.rate}-${suffix}`,
      );
      await client.close().catch(() => undefined);
      results.push(result);
      console.log(
        `${result.stateWritesPerContactWrite} state writes per contact write; materialized ${result.materializedPerSecond ?? 'FAILED'}/s; last write -> flushed ${result.lastWriteToFlushedMs} ms${result.sweeps ? ` (${result.sweeps} sweeps, first ${result.firstSweepAfterLastWriteMs} ms after the last write)` : ''}${result.flushError ? ` (${result.flushError})` : ''}`,
      );
    }

    console.log('');
    console.log(
      `State writes per contact write (Storage emulator object writes under networks/{net}/ after flush(), / contact writes); window ${WINDOW_MS} ms`,
    );
    console.log(
      table(
        [
          'mode',
          'offered/s',
          'writes',
          'sent/s',
          'accepted/s',
          'MATERIALIZED/s',
          'last write->flushed ms',
          'state writes',
          'PER CONTACT WRITE',
          'model',
          'contacts/groups/net',
          'late',
          'sweeps',
          'hot obj w/s',
          'fn cpu ms/w',
          'ok',
        ],
        results.map((r) => [
          r.mode,
          r.offeredPerSecond,
          r.writes,
          r.sentPerSecond,
          r.acceptedPerSecond,
          r.materializedPerSecond ?? 'FAILED',
          r.lastWriteToFlushedMs,
          r.stateWrites.total,
          r.stateWritesPerContactWrite,
          r.mode === 'batch' ? `${r.modelSimple} / ${r.modelWindows} (${r.windowsTouched} win)` : '1',
          `${r.stateWrites.contactObjects}/${r.stateWrites.groupRecords}/${r.stateWrites.networkRecords}${r.stateWrites.other ? `+${r.stateWrites.other}` : ''}`,
          r.lateStateWrites,
          r.mode === 'batch' ? r.sweeps : '-',
          r.hottestObjectWritesPerSecond,
          r.cpuMsPerWrite.functions,
          r.verified ? 'yes' : `NO (${r.mismatches})`,
        ]),
      ),
    );
    console.log(
      '  model (batch): groups / (rate x window), capped at 1  /  groups x windows touched by the send span / writes',
    );
    const batches = results.filter((r) => r.persist);
    if (batches.length) {
      console.log('');
      console.log("Batch flushes, from persist's log");
      console.log(
        table(
          [
            'offered/s',
            'tasks',
            'with writes',
            'group flushes',
            'events',
            'repeated group+window',
            'windows',
            'windows after last send',
            'persist ms (sum/max)',
            'last flush after last send ms',
          ],
          batches.map((r) => {
            const p = r.persist!;
            return [
              r.offeredPerSecond,
              p.calls,
              p.callsWithWrites,
              p.groupFlushes,
              p.eventsFlushed,
              p.repeatedGroupWindows,
              p.windowsFlushed,
              p.windowsAfterLastSend,
              `${p.msWithWrites}/${p.maxCallMs}`,
              p.lastGroupFlushAfterLastSendMs,
            ];
          }),
        ),
      );
    }
    console.log(
      '  hot obj w/s: writes to the most-written object per second of sending (Cloud Storage sustains ~1/s per object)',
    );

    const ratio = (rate: number) => {
      const imm = results.find((r) => r.mode === 'immediate' && r.offeredPerSecond === rate);
      const bat = results.find((r) => r.mode === 'batch' && r.offeredPerSecond === rate);
      return imm?.stateWritesPerContactWrite && bat?.stateWritesPerContactWrite
        ? round(imm.stateWritesPerContactWrite / bat.stateWritesPerContactWrite, 1)
        : null;
    };
    const reduction = Object.fromEntries(RATES.map((rate) => [rate, ratio(rate)]));
    console.log(
      `  immediate / batch state writes, by rate: ${RATES.map((rate) => `${rate}/s x${reduction[rate]}`).join(', ')}`,
    );
    const totalSeconds = round((now() - runStart) / 1000, 1);
    console.log(
      `machine: node ${machine.node}, ${machine.cpus} cpus ${machine.cpuModel}; load at end ${os
        .loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}; run ${totalSeconds} s`,
    );
    const result = {
      setup: 'one mesh: default immediate, SPINE_PERSIST_OVERRIDES makes one network batch; scheduler runner off',
      machine: { ...machine, loadAverageAtEnd: loadAverage() },
      meshStartSeconds,
      windowMs: WINDOW_MS,
      groups: GROUPS,
      contactsPerGroup: CONTACTS,
      phases: results,
      skipped,
      warmUpSweeps,
      immediateOverBatch: reduction,
      totalSeconds,
    };
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await pubsub.close().catch(() => undefined);
    await mesh.stop();
    clearTimeout(deadline);
  }
}

runBench(main, 'persistence bench failed:');
