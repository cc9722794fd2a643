/**
 * Batched persistence through the whole local mesh: materialize forwards batched writes to the
 * pending buffer and books one Cloud Task per group and window (on the Tasks emulator); persist,
 * the task's target, drains the buffer with one state write per group.
 */
import { randomUUID } from 'node:crypto';
import { canonicalize } from '../../shared/codec';
import { growArray, growSet } from 'super-spine';
import { eventually } from 'super-spine/testing';
import { useLocalMesh } from '../helpers/mesh';

jest.setTimeout(240_000);

const WINDOW_MS = 30_000;
// The interval job (every minute) runs every 2 s of real time.
const SCHEDULER_SPEED_UP = 30;
const mesh = useLocalMesh({
  schedulerSpeedUp: SCHEDULER_SPEED_UP,
  functionsEnv: {
    SPINE_PERSIST_ON: 'batch',
    SPINE_BATCH_WINDOW_MS: String(WINDOW_MS),
    SPINE_PERSIST_OVERRIDES: JSON.stringify({ 'manual-net': 'manual', 'interval-net': 'interval' }),
    // The crash test watches persist's progress in its logs.
    SPINE_LOG_LEVEL: 'INFO',
  },
});

const windowOf = (time: number) => Math.floor(time / WINDOW_MS);

/** Waits until a window has just begun, so a burst of writes fits inside one window. */
async function startOfWindow(): Promise<number> {
  await eventually(() => expect(Date.now() % WINDOW_MS).toBeLessThan(1_500), {
    timeoutMs: WINDOW_MS + 5_000,
    intervalMs: 100,
  });
  return windowOf(Date.now());
}

/** The flushes persist logged for a network: which group, how many writes, for which window. */
function persistLogs(network: string): Array<{ path: string; events: number; window?: number }> {
  return mesh.functionLogs
    .filter((line) => line.includes('"persisted group"') && line.includes(network))
    .map((line) => JSON.parse(line) as { path: string; events: number; window?: number });
}

function groupRecordWrites(network: string): Map<string, number> {
  const stats = mesh.mesh.emulators.storage!.stats();
  const out = new Map<string, number>();
  for (const [object, count] of Object.entries(stats.writesByObject)) {
    const match = new RegExp(`/networks/${network}/groups/([^/]+)/`).exec(object);
    if (match)
      out.set(
        `${match[1]}:${object.slice(object.lastIndexOf('/') + 1)}`,
        (out.get(`${match[1]}:${object.slice(object.lastIndexOf('/') + 1)}`) ?? 0) + count,
      );
  }
  return out;
}

it('writes each group once for 5000 writes to 10 groups inside one window, and the state equals a model', async () => {
  const network = `batch-${randomUUID().slice(0, 8)}`;
  const spine = mesh.client({ persistOn: 'batch', flushTimeoutMs: 120_000 });
  await spine.initialize();
  const window = await startOfWindow();

  const lastValue = new Map<string, number>();
  const unions = new Map<string, Set<string>>();
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 5000; i++) {
    const group = `g${i % 10}`;
    if (i % 2 === 0) {
      const contact = `last-${i % 7}`;
      lastValue.set(`${group}/${contact}`, i);
      writes.push(spine.saveContactContent(network, group, contact, i));
    } else {
      const contact = `set-${i % 3}`;
      const key = `${group}/${contact}`;
      unions.set(key, new Set([...(unions.get(key) ?? []), `item-${i}`]));
      writes.push(spine.saveContactContent(network, group, contact, growSet([`item-${i}`]), { blendMode: 'merge' }));
    }
  }
  await Promise.all(writes);
  expect(windowOf(Date.now())).toBe(window);
  await spine.flush();

  for (let g = 0; g < 10; g++) {
    const state = await spine.loadGroupState(network, `g${g}`);
    for (const [key, value] of lastValue)
      if (key.startsWith(`g${g}/`)) expect(state?.contacts.get(key.split('/')[1]!)?.content).toBe(value);
    for (const [key, items] of unions)
      if (key.startsWith(`g${g}/`))
        expect(canonicalize(state?.contacts.get(key.split('/')[1]!)?.content)).toBe(canonicalize(growSet(items)));
  }
  // Windows are counted where writes arrive (materialize), which may lag the burst: the writes
  // of each group were flushed by its windows' flushes, each writing the group once.
  const flushes = persistLogs(network);
  const writesPerObject = groupRecordWrites(network);
  expect([...writesPerObject.keys()].sort()).toEqual(Array.from({ length: 10 }, (_, g) => `g${g}:group.json`).sort());
  for (let g = 0; g < 10; g++) {
    const ofGroup = flushes.filter((f) => f.path === `${network}/g${g}`);
    // One write of the group per flush, and no window flushed the group twice.
    expect(writesPerObject.get(`g${g}:group.json`)).toBe(ofGroup.length);
    const windowFlushes = ofGroup.filter((f) => f.window !== undefined).map((f) => f.window);
    expect(new Set(windowFlushes).size).toBe(windowFlushes.length);
    // 500 writes became at most a couple of state writes (a window spilled over by a loaded
    // machine is flushed by the next window or the periodic sweep).
    expect(ofGroup.length).toBeLessThanOrEqual(3);
  }
  expect(flushes.reduce((sum, f) => sum + f.events, 0)).toBe(5000);
});

it('loses nothing and applies nothing twice when persist is killed mid-flush and Cloud Tasks retries', async () => {
  const network = `crash-${randomUUID().slice(0, 8)}`;
  const spine = mesh.client({ persistOn: 'batch', flushTimeoutMs: 180_000 });
  await spine.initialize();
  // More groups than persist writes at once (16), so a flush takes several rounds and the crash
  // lands in the middle of it.
  const groups = 48;
  const perGroup = 20;
  const logsBefore = mesh.functionLogs.length;
  const writes: Promise<void>[] = [];
  // Appends to grow arrays: a write applied twice would show up as a duplicate item.
  for (let i = 0; i < groups * perGroup; i++)
    writes.push(spine.saveContactContent(network, `g${i % groups}`, 'log', growArray([i]), { blendMode: 'merge' }));
  await Promise.all(writes);

  const persisted = () =>
    mesh.functionLogs.slice(logsBefore).filter((line) => line.includes('"persisted group"') && line.includes(network));
  await eventually(() => expect(persisted().length).toBeGreaterThan(0), {
    timeoutMs: WINDOW_MS * 2 + 10_000,
    intervalMs: 5,
  });
  await mesh.mesh.restartFunctions({ crash: true });
  const persistedBeforeCrash = persisted().length;

  await spine.flush();
  const seen = new Set<number>();
  for (let g = 0; g < groups; g++) {
    const content = (await spine.loadContactContent(network, `g${g}`, 'log')) as { _tag: string; items: number[] };
    expect(content._tag).toBe('GrowArray');
    expect(content.items).toHaveLength(perGroup);
    for (const item of content.items) {
      expect(item % groups).toBe(g);
      seen.add(item);
    }
  }
  expect(seen.size).toBe(groups * perGroup);
  // The crash landed before every group was flushed: the rest was flushed by the retried task.
  expect(persistedBeforeCrash).toBeLessThan(groups);
});

it('keeps writes of a manual network pending until an explicit flush', async () => {
  const spine = mesh.client({
    persistOn: 'batch',
    persistOverrides: { 'manual-net': 'manual' },
    flushTimeoutMs: 60_000,
  });
  await spine.initialize();
  const contact = `c-${randomUUID().slice(0, 8)}`;
  await spine.saveContactContent('manual-net', 'g', contact, 'waiting');
  // Another write goes through the whole pipeline meanwhile, so the manual one had every chance.
  await spine.saveContactContent(`other-${randomUUID().slice(0, 8)}`, 'g', 'c', 1);
  await eventually(
    async () =>
      expect(mesh.functionLogs.some((l) => l.includes('"persisted group"') && l.includes('other-'))).toBe(true),
    { timeoutMs: WINDOW_MS * 2 + 10_000 },
  );
  expect(await spine.loadContactContent('manual-net', 'g', contact)).toBeNull();
  await spine.flush();
  expect(await spine.loadContactContent('manual-net', 'g', contact)).toBe('waiting');
});

it('flushes writes of an interval network on the scheduled job, with no request from the writer', async () => {
  // A client that takes the network for an immediate one, so its flush() asks for nothing: the schedule does it.
  const spine = mesh.client({ persistOn: 'immediate', flushTimeoutMs: 60_000 });
  await spine.initialize();
  const contact = `c-${randomUUID().slice(0, 8)}`;
  const firedBefore = mesh.mesh.scheduler!.fired().filter((slot) => slot.job.endsWith('persist-interval')).length;
  await spine.saveContactContent('interval-net', 'g', contact, 'on schedule');
  await spine.flush();
  expect(await spine.loadContactContent('interval-net', 'g', contact)).toBe('on schedule');
  const fired = mesh.mesh.scheduler!.fired().filter((slot) => slot.job.endsWith('persist-interval'));
  expect(fired.length).toBeGreaterThan(firedBefore);
  expect(fired.some((slot) => slot.status === 'succeeded')).toBe(true);
});

it("flush() asks for a batch network's pending writes to be persisted now, without waiting for the window to close", async () => {
  const network = `asked-${randomUUID().slice(0, 8)}`;
  const spine = mesh.client({ persistOn: 'batch', flushTimeoutMs: 60_000 });
  await spine.initialize();
  const window = await startOfWindow();
  await Promise.all(Array.from({ length: 50 }, (_, i) => spine.saveContactContent(network, 'g', `c${i}`, i)));
  await spine.flush();
  // Still inside the 30 s window the writes arrived in: its own flush has not run yet.
  expect(windowOf(Date.now())).toBe(window);
  expect((await spine.loadGroupState(network, 'g'))?.contacts.size).toBe(50);
  // The functions' log lines reach this process a little after the acknowledgements.
  await eventually(() => expect(persistLogs(network).reduce((sum, f) => sum + f.events, 0)).toBe(50), {
    timeoutMs: 10_000,
    intervalMs: 50,
  });
  expect(persistLogs(network).some((f) => f.window === undefined)).toBe(true);
});
