/**
 * The event archive's cost and history's latency, in one run:
 *
 *   1. the event plane's materialized writes/s on the local mesh without and with the archiver
 *      (two meshes, one after the other, the same bursts: M contact writes over G groups by W
 *      writers, from the first publish until every writer's `flush()` resolved; R rounds each,
 *      the median reported), and with the archiver how long after the flush the archive held
 *      every write;
 *   2. `history` of one contact among N archived events: N contact-write events over C contacts
 *      written straight into a Storage emulator (its own process) in the archive's layout, 1,000
 *      events an object, then `readHistory` for one contact (list, read and parse every object,
 *      de-duplicate, replay the contact's writes), median of 3.
 *
 *   3. point-in-time restore (`restoreNetwork(..., { at, as })`) on the local mesh: a network of
 *      C contacts saved and snapshotted, then E₁ contact-write events after the snapshot written
 *      straight into the mesh's archive (1,000 an object), restored at now into a new network; and
 *      a network of E₂ archived events with no snapshot, restored from the archive's beginning.
 *      Each: the whole call (rebuild in memory, the network save through the mesh, until it is
 *      materialized) and the in-memory rebuild alone (`rebuildNetworkAt`), median of 3.
 *
 *     npm run bench:history      (or: npx tsx bench/history.ts)
 *     SPINE_BENCH_ONLY=restore npm run bench:history      (only part 3)
 *
 * Sizes: SPINE_BENCH_WRITES=3000 SPINE_BENCH_GROUPS=20 SPINE_BENCH_WRITERS=4 SPINE_BENCH_ROUNDS=3
 * SPINE_BENCH_ARCHIVED_EVENTS=100000 SPINE_BENCH_CONTACTS=1000
 * SPINE_BENCH_RESTORE_EVENTS=10000 SPINE_BENCH_RESTORE_EMPTY_EVENTS=100000
 */
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalMesh, type LocalMesh } from '../cli/local-mesh';
import { encode } from '../shared/codec';
import { createEvent } from '../shared/events';
import { EventType } from '../shared/events/types';
import { ArchiveReader } from '../shared/history/archive-reader';
import { readHistory } from '../shared/history/history';
import { archiveObjectName, type ArchiveLayout } from '../shared/history/layout';
import { rebuildNetworkAt } from '../shared/history/restore';
import type { Contact, GroupState, NetworkState } from '../shared/model';
import { formatStamp } from '../shared/hlc';
import { createPubSubClient, createStorageClient } from '../shared/mesh/clients';
import type { SpineStorage } from '../shared/mesh/spine-storage';
import { defineTopology } from '../shared/topology';
import { mapWithConcurrency } from '../shared/util/concurrency';
import {
  emulatorClient,
  int,
  loadAverage,
  machine,
  meshClient,
  now,
  runBench,
  sleep,
  startStorageEmulatorProcess,
  summarize,
} from './support';

process.env.METADATA_SERVER_DETECTION ??= 'none';
process.env.SPINE_LOG_LEVEL ??= 'WARNING';

const WRITES = int('SPINE_BENCH_WRITES', 3_000);
const GROUPS = int('SPINE_BENCH_GROUPS', 20);
const WRITERS = int('SPINE_BENCH_WRITERS', 4);
const ROUNDS = int('SPINE_BENCH_ROUNDS', 3);
const ARCHIVED_EVENTS = int('SPINE_BENCH_ARCHIVED_EVENTS', 100_000);
const CONTACTS = int('SPINE_BENCH_CONTACTS', 1_000);
const EVENTS_PER_OBJECT = 1_000;
const RESTORE_EVENTS = int('SPINE_BENCH_RESTORE_EVENTS', 10_000);
const RESTORE_EMPTY_EVENTS = int('SPINE_BENCH_RESTORE_EMPTY_EVENTS', 100_000);
const ONLY = process.env.SPINE_BENCH_ONLY;
if (ONLY !== undefined && ONLY !== 'restore') throw new Error(`SPINE_BENCH_ONLY must be "restore", not ${ONLY}`);
const FLUSH_TIMEOUT_MS = 120_000;

/** `value` to `digits` decimals. */
const fixed = (value: number, digits = 1) => Number(value.toFixed(digits));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** One burst: every write issued at once, timed until every writer's flush resolved. */
async function burst(writers: SpineStorage[], network: string, round: number): Promise<number> {
  const start = now();
  await Promise.all(
    Array.from({ length: WRITES }, (_, i) =>
      writers[i % writers.length]!.saveContactContent(network, `g${i % GROUPS}`, `c${i % 10}`, { round, i }),
    ),
  );
  await Promise.all(writers.map((writer) => writer.flush(FLUSH_TIMEOUT_MS)));
  return WRITES / ((now() - start) / 1000);
}

async function eventPlane(archiver: boolean) {
  // As `npm start` runs it, with a data dir: the journal then keeps each write until the archiver
  // has it too (SPINE_BENCH_JOURNAL=0: without a data dir).
  const dataDir =
    process.env.SPINE_BENCH_JOURNAL === '0' ? undefined : await mkdtemp(path.join(os.tmpdir(), 'spine-bench-history-'));
  const mesh: LocalMesh = await startLocalMesh({
    scheduler: false,
    ...(dataDir ? { dataDir } : {}),
    ...(archiver ? { archiver: true } : {}),
  });
  const pubsub = createPubSubClient(mesh.settings);
  const storage = createStorageClient(mesh.settings);
  const writers = Array.from({ length: WRITERS }, (_, i) => meshClient(mesh, pubsub, storage, `bench-${i}`));
  try {
    const network = `bench-${randomUUID().slice(0, 8)}`;
    // A warm-up burst (not counted): the functions' first requests load their modules.
    await burst(writers, `${network}-warm`, -1);
    const rates: number[] = [];
    let archiveLagMs: number | undefined;
    for (let r = 0; r < ROUNDS; r++) {
      rates.push(await burst(writers, network, r));
      if (archiver && r === ROUNDS - 1) {
        const flushed = now();
        const reader = new ArchiveReader(storage, mesh.settings.bucket, mesh.topology.archive, {
          maxBatchMs: mesh.topology.archive.maxDurationSeconds * 1000,
        });
        const expected = WRITES * ROUNDS;
        for (;;) {
          const events = await reader.read({ networkId: network });
          const writes = events.reduce(
            (sum, event) => sum + (event.type === EventType.ContactsWritten ? event.data.writes.length : 1),
            0,
          );
          if (writes >= expected) break;
          if (now() - flushed > 60_000) throw new Error(`the archive holds ${writes} of ${expected} writes after 60 s`);
          await sleep(100);
        }
        archiveLagMs = fixed(now() - flushed, 0);
      }
    }
    return { rates: rates.map((rate) => fixed(rate, 0)), median: fixed(median(rates), 0), archiveLagMs };
  } finally {
    await Promise.all(writers.map((writer) => writer.close().catch(() => undefined)));
    await pubsub.close();
    await mesh.stop({ drain: false });
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

async function historyLatency() {
  const bucket = 'bench-history';
  const { url, child }: { url: string; child: ChildProcess } = await startStorageEmulatorProcess();
  try {
    const storage = emulatorClient(url);
    await storage.createBucket(bucket);
    const layout = defineTopology({ projectId: 'bench', bucket }).archive;
    const base = Date.now() - 3_600_000;
    const objects = Math.ceil(ARCHIVED_EVENTS / EVENTS_PER_OBJECT);
    const writeStart = now();
    await mapWithConcurrency(
      Array.from({ length: objects }, (_, o) => o),
      8,
      async (o) => {
        const lines: string[] = [];
        for (let i = o * EVENTS_PER_OBJECT; i < Math.min(ARCHIVED_EVENTS, (o + 1) * EVENTS_PER_OBJECT); i++) {
          const writerId = `w${i % 4}`;
          const event = createEvent(
            EventType.ContactWritten,
            {
              networkId: 'n',
              groupId: `g${i % 20}`,
              contactId: `c${i % CONTACTS}`,
              content: { i },
              writerId,
              seq: Math.floor(i / CONTACTS) + 1,
              stamp: formatStamp({ wallTime: base + i, logical: 0, writerId }),
            },
            { source: '//bench', time: new Date(base + i) },
          );
          lines.push(encode(event) + '\n');
        }
        await storage
          .bucket(bucket)
          .file(archiveObjectName(layout, new Date(base + o * EVENTS_PER_OBJECT)))
          .save(lines.join(''), { resumable: false });
      },
    );
    const writeSeconds = fixed((now() - writeStart) / 1000, 1);
    const reader = new ArchiveReader(storage, bucket, layout, { maxBatchMs: layout.maxDurationSeconds * 1000 });
    const load = async () => Buffer.from('');
    const samples: number[] = [];
    let entries = 0;
    for (let r = 0; r < 3; r++) {
      const start = now();
      // c7 lives in group g7 (7 mod 20): its writes are every CONTACTS-th event.
      const page = await readHistory(reader, load, 'n', `g${7 % 20}`, 'c7', { limit: 1_000 });
      samples.push(now() - start);
      entries = page.entries.length;
    }
    return { archivedEvents: ARCHIVED_EVENTS, objects, writeSeconds, entries, latencyMs: summarize(samples) };
  } finally {
    child.kill('SIGTERM');
  }
}

/**
 * Writes `count` contact-write events of `networkId` into the archive, times spread evenly over
 * (`from`, `to`], 1,000 an object, as the archiver would (each object named by its first event's time).
 */
async function writeArchive(
  storage: ReturnType<typeof createStorageClient>,
  bucket: string,
  layout: ArchiveLayout,
  networkId: string,
  count: number,
  from: number,
  to: number,
): Promise<void> {
  const timeOf = (i: number) => from + 1 + Math.floor(((to - from - 1) * i) / count);
  const objects = Math.ceil(count / EVENTS_PER_OBJECT);
  await mapWithConcurrency(
    Array.from({ length: objects }, (_, o) => o),
    8,
    async (o) => {
      const lines: string[] = [];
      for (let i = o * EVENTS_PER_OBJECT; i < Math.min(count, (o + 1) * EVENTS_PER_OBJECT); i++) {
        const writerId = `restore-bench-w${i % 4}`;
        const time = timeOf(i);
        const event = createEvent(
          EventType.ContactWritten,
          {
            networkId,
            groupId: `g${i % GROUPS}`,
            contactId: `c${i % CONTACTS}`,
            content: { i },
            writerId,
            seq: Math.floor(i / CONTACTS) + 1,
            stamp: formatStamp({ wallTime: time, logical: i, writerId }),
          },
          { source: '//bench', time: new Date(time) },
        );
        lines.push(encode(event) + '\n');
      }
      await storage
        .bucket(bucket)
        .file(archiveObjectName(layout, new Date(timeOf(o * EVENTS_PER_OBJECT))))
        .save(lines.join(''), { resumable: false });
    },
  );
}

function networkOf(groups: number, contacts: number): NetworkState {
  const state: NetworkState = { groups: new Map(), currentGroupId: 'g0', rootGroupId: 'g0' };
  for (let g = 0; g < groups; g++) {
    const members = new Map<string, Contact>();
    for (let c = g; c < contacts; c += groups)
      members.set(`c${c}`, { id: `c${c}`, groupId: `g${g}`, content: { initial: c }, blendMode: 'accept-last' });
    const group: GroupState = {
      group: {
        id: `g${g}`,
        name: `g${g}`,
        contactIds: [...members.keys()],
        wireIds: [],
        subgroupIds: [],
        boundaryContactIds: [],
      },
      contacts: members,
      wires: new Map(),
    };
    state.groups.set(`g${g}`, group);
  }
  return state;
}

async function restoreTimes() {
  const mesh: LocalMesh = await startLocalMesh({ scheduler: false });
  const pubsub = createPubSubClient(mesh.settings);
  const storage = createStorageClient(mesh.settings);
  const client = meshClient(mesh, pubsub, storage, 'restore-bench', { flushTimeoutMs: 600_000 });
  const { bucket } = mesh.settings;
  const layout = mesh.topology.archive;
  const reader = new ArchiveReader(storage, bucket, layout, { maxBatchMs: layout.maxDurationSeconds * 1000 });
  const id = randomUUID().slice(0, 8);
  const measure = async (networkId: string, events: number) => {
    const whole: number[] = [];
    const rebuild: number[] = [];
    let summary;
    for (let r = 0; r < 3; r++) {
      const at = new Date();
      let start = now();
      summary = await client.restoreNetwork(networkId, { at, as: `${networkId}-r${r}` });
      whole.push(now() - start);
      if (summary.eventsApplied !== events)
        throw new Error(`the restore applied ${summary.eventsApplied} events, not ${events}`);
      start = now();
      await rebuildNetworkAt(reader, client, async () => Buffer.from(''), networkId, at);
      rebuild.push(now() - start);
    }
    const restored = await client.loadNetworkState(`${networkId}-r0`);
    const contacts = [...(restored?.groups.values() ?? [])].reduce((sum, group) => sum + group.contacts.size, 0);
    return {
      events,
      snapshot: summary!.snapshot?.id ?? null,
      contactsRestored: contacts,
      wholeMs: summarize(whole),
      rebuildMs: summarize(rebuild),
    };
  };
  try {
    // For scale: writing a network of the same size through the mesh, as a restore's last step does.
    const start = now();
    await client.saveNetworkState(`restore-plain-${id}`, networkOf(GROUPS, CONTACTS));
    await client.flush();
    const networkSaveMs = fixed(now() - start, 0);
    // A snapshot, then events after it.
    const snapshotted = `restore-snap-${id}`;
    await client.saveNetworkState(snapshotted, networkOf(GROUPS, CONTACTS));
    await client.saveSnapshot(snapshotted);
    const [info] = await client.listSnapshots(snapshotted);
    await writeArchive(storage, bucket, layout, snapshotted, RESTORE_EVENTS, info!.createdAt.getTime(), Date.now());
    const fromSnapshot = await measure(snapshotted, RESTORE_EVENTS);
    // No snapshot: every event from the archive's beginning (the hour before now).
    const fromEmpty = `restore-empty-${id}`;
    await writeArchive(storage, bucket, layout, fromEmpty, RESTORE_EMPTY_EVENTS, Date.now() - 3_600_000, Date.now());
    const empty = await measure(fromEmpty, RESTORE_EMPTY_EVENTS);
    return { networkSaveMs, fromSnapshot, fromEmpty: empty };
  } finally {
    await client.close().catch(() => undefined);
    await pubsub.close();
    await mesh.stop({ drain: false });
  }
}

function printRestore(restore: Awaited<ReturnType<typeof restoreTimes>>): void {
  console.log(
    `  a network save of ${CONTACTS} contacts through the mesh, until materialized: ${restore.networkSaveMs} ms`,
  );
  for (const [what, figures] of [
    ['a snapshot plus', restore.fromSnapshot],
    ['from empty,', restore.fromEmpty],
  ] as const)
    console.log(
      `  restore ${what} ${figures.events} archived events (${figures.contactsRestored} contacts): median ${figures.wholeMs.p50} ms in all, of which rebuilding in memory ${figures.rebuildMs.p50} ms`,
    );
}

runBench(async () => {
  if (ONLY === 'restore') {
    console.log(`bench:history (restore only) — ${CONTACTS} contacts over ${GROUPS} groups`);
    const restore = await restoreTimes();
    printRestore(restore);
    console.log(`RESULT ${JSON.stringify({ restore, machine: machine(), load: loadAverage() })}`);
    return;
  }
  console.log(`bench:history — ${WRITES} writes × ${ROUNDS} rounds, ${GROUPS} groups, ${WRITERS} writers`);
  const without = await eventPlane(false);
  console.log(`  without the archiver: ${without.median} materialized writes/s (rounds ${without.rates.join(', ')})`);
  const withArchiver = await eventPlane(true);
  console.log(
    `  with the archiver:    ${withArchiver.median} materialized writes/s (rounds ${withArchiver.rates.join(', ')}); archive complete ${withArchiver.archiveLagMs} ms after the flush`,
  );
  const cost = fixed((1 - withArchiver.median / without.median) * 100, 1);
  console.log(`  archiver cost: ${cost}% of materialized writes/s`);
  const history = await historyLatency();
  console.log(
    `  history of one contact among ${history.archivedEvents} archived events (${history.objects} objects): ${history.entries} entries, median ${history.latencyMs.p50} ms`,
  );
  const restore = await restoreTimes();
  printRestore(restore);
  console.log(
    `RESULT ${JSON.stringify({ without, withArchiver, costPercent: cost, history, restore, machine: machine(), load: loadAverage() })}`,
  );
});
