/**
 * How fast a catch-up subscription delivers from the event archive: on the local mesh with its
 * archiver, W writers make M contact writes over G groups, each writer to its own contacts (so
 * every write changes something and is delivered); once the archive holds every one,
 * `subscribe(network, callback, { since })` from before the first write delivers them, and the
 * time from the call until it resolves (the archive part: list, read, replay, call back) is
 * measured, R rounds, median reported. The subscriber's `archiveLagMs` is 0 here, as nothing is
 * written during the catch-up and the archive is known complete; a real catch-up first waits its
 * lag (3 s locally, the archive's max_duration + 15 s in the cloud).
 *
 *     npx tsx bench/catch-up.ts
 *
 * Sizes: SPINE_BENCH_WRITES=10000 SPINE_BENCH_GROUPS=20 SPINE_BENCH_WRITERS=4 SPINE_BENCH_ROUNDS=3;
 * SPINE_BENCH_BUNDLING=0 (default: every write its own event, so a change each) or 1 (writers bundle).
 */
import { randomUUID } from 'node:crypto';
import { startLocalMesh } from '../cli/local-mesh';
import { EventType } from '../shared/events/types';
import { ArchiveReader } from '../shared/history/archive-reader';
import { createPubSubClient, createStorageClient } from '../shared/mesh/clients';
import { int, loadAverage, machine, meshClient, now, runBench, sleep, summarize } from './support';

process.env.METADATA_SERVER_DETECTION ??= 'none';
process.env.SPINE_LOG_LEVEL ??= 'WARNING';

const WRITES = int('SPINE_BENCH_WRITES', 10_000);
const GROUPS = int('SPINE_BENCH_GROUPS', 20);
const WRITERS = int('SPINE_BENCH_WRITERS', 4);
const ROUNDS = int('SPINE_BENCH_ROUNDS', 3);
const BUNDLING = process.env.SPINE_BENCH_BUNDLING === '1';

runBench(async () => {
  console.log(
    `bench:catch-up — ${WRITES} writes, ${GROUPS} groups, ${WRITERS} writers, ${ROUNDS} rounds, bundling ${BUNDLING ? 'on' : 'off'}`,
  );
  const mesh = await startLocalMesh({ scheduler: false, archiver: true });
  const pubsub = createPubSubClient(mesh.settings);
  const storage = createStorageClient(mesh.settings);
  const writers = Array.from({ length: WRITERS }, (_, i) =>
    meshClient(mesh, pubsub, storage, `bench-${i}`, BUNDLING ? {} : { bundling: false }),
  );
  try {
    const network = `catch-up-${randomUUID().slice(0, 8)}`;
    const reader = new ArchiveReader(storage, mesh.settings.bucket, mesh.topology.archive, {
      maxBatchMs: mesh.topology.archive.maxDurationSeconds * 1000,
    });
    // since must not be before the archive begins: a first write, archived, before it.
    await writers[0]!.saveContactContent(`${network}-seed`, 'g', 'c', 0, { wait: 'materialized' });
    while (!(await reader.begins())) await sleep(100);
    const since = new Date();
    await Promise.all(
      Array.from({ length: WRITES }, (_, i) =>
        writers[i % WRITERS]!.saveContactContent(network, `g${i % GROUPS}`, `w${i % WRITERS}-c${i % 50}`, { i }),
      ),
    );
    await Promise.all(writers.map((writer) => writer.flush(300_000)));
    let events = 0;
    for (const started = now(); ;) {
      const archived = await reader.read({ networkId: network });
      const writes = archived.reduce(
        (sum, event) => sum + (event.type === EventType.ContactsWritten ? event.data.writes.length : 1),
        0,
      );
      events = archived.length;
      if (writes >= WRITES) break;
      if (now() - started > 60_000) throw new Error(`the archive holds ${writes} of ${WRITES} writes after 60 s`);
      await sleep(100);
    }
    // The subscriber reads with no lag: the archive is complete and nothing is written meanwhile.
    const catchUp = meshClient(mesh, pubsub, storage, 'bench-catch-up', { archiveLagMs: 0 });
    const samples: number[] = [];
    let changes = 0;
    let covered = 0;
    for (let r = 0; r < ROUNDS; r++) {
      changes = 0;
      covered = 0;
      const start = now();
      const unsubscribe = await catchUp.subscribe(
        network,
        (_state, change) => {
          changes++;
          covered += change.eventIds?.length ?? 0;
        },
        { since },
      );
      samples.push(now() - start);
      await unsubscribe();
    }
    if (covered !== WRITES) throw new Error(`the catch-up delivered ${covered} of ${WRITES} writes`);
    const latency = summarize(samples);
    const seconds = (latency.p50 ?? NaN) / 1000;
    console.log(
      `  catch-up of ${WRITES} writes (${events} archived events, ${changes} changes): median ${latency.p50} ms, ` +
        `${Math.round(WRITES / seconds)} writes/s, ${Math.round(changes / seconds)} changes/s`,
    );
    console.log(
      `RESULT ${JSON.stringify({ writes: WRITES, bundling: BUNDLING, events, changes, latencyMs: latency, writesPerSecond: Math.round(WRITES / seconds), machine: machine(), load: loadAverage() })}`,
    );
    await catchUp.close();
  } finally {
    await Promise.all(writers.map((writer) => writer.close().catch(() => undefined)));
    await pubsub.close();
    await mesh.stop({ drain: false });
  }
});
