import fc from 'fast-check';
import { KeyedMutex, KeyedReadWriteLock } from '../../shared/util/locks';

/** A promise the test resolves by hand: tasks hold their lock until the test lets them go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Lets every queued promise callback run (a turn of the event loop, not a timed wait). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs `task` under a lock and records when it starts and ends. */
function tracked(log: string[], name: string, hold: Promise<void>, result: unknown = name): () => Promise<unknown> {
  return async () => {
    log.push(`${name} start`);
    await hold;
    log.push(`${name} end`);
    return result;
  };
}

describe('KeyedMutex', () => {
  it('runs tasks on one key one at a time, in arrival order', async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    const gates = [gate(), gate(), gate()];
    const runs = gates.map((g, i) => mutex.run('k', tracked(log, `t${i}`, g.promise)));
    await settle();
    expect(log).toEqual(['t0 start']);

    gates[2]!.open(); // the last one is ready early, but must still wait its turn
    await settle();
    expect(log).toEqual(['t0 start']);

    gates[0]!.open();
    await settle();
    expect(log).toEqual(['t0 start', 't0 end', 't1 start']);

    gates[1]!.open();
    expect(await Promise.all(runs)).toEqual(['t0', 't1', 't2']);
    expect(log).toEqual(['t0 start', 't0 end', 't1 start', 't1 end', 't2 start', 't2 end']);
  });

  it('does not serialize across keys', async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    const a = gate();
    const b = gate();
    const runA = mutex.run('a', tracked(log, 'a', a.promise));
    const runB = mutex.run('b', tracked(log, 'b', b.promise));
    await settle();
    expect(log).toEqual(['a start', 'b start']);
    b.open();
    await runB; // finishes while a still holds its key
    expect(log).toEqual(['a start', 'b start', 'b end']);
    a.open();
    await runA;
  });

  it('releases the key when a task fails, and passes the error on', async () => {
    const mutex = new KeyedMutex();
    const failing = mutex.run('k', async () => {
      throw new Error('boom');
    });
    const next = mutex.run('k', async () => 'next ran');
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('next ran');
    // A synchronous throw inside the task, too.
    await expect(
      mutex.run('k', () => {
        throw new Error('sync boom');
      }),
    ).rejects.toThrow('sync boom');
    await expect(mutex.run('k', async () => 'still usable')).resolves.toBe('still usable');
  });

  it('property: under any scheduling, at most one task per key runs, and each key keeps arrival order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.constantFrom('x', 'y', 'z'), { minLength: 1, maxLength: 12 }),
        async (s, keys) => {
          const mutex = new KeyedMutex();
          const active = new Map<string, number>();
          const started: Record<string, number[]> = {};
          let overlapAcrossKeys = false;
          const runs = keys.map((key, i) =>
            mutex.run(key, async () => {
              active.set(key, (active.get(key) ?? 0) + 1);
              expect(active.get(key)).toBe(1);
              if ([...active.values()].filter((n) => n > 0).length > 1) overlapAcrossKeys = true;
              (started[key] ??= []).push(i);
              await s.schedule(Promise.resolve(), `task ${i} on ${key}`);
              active.set(key, active.get(key)! - 1);
              return i;
            }),
          );
          await s.waitFor(Promise.all(runs));
          expect(await Promise.all(runs)).toEqual(keys.map((_, i) => i));
          for (const [key, order] of Object.entries(started)) {
            expect(order).toEqual(keys.flatMap((k, i) => (k === key ? [i] : [])));
          }
          // Different keys did run side by side whenever there were two.
          if (new Set(keys).size > 1) expect(overlapAcrossKeys).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('KeyedReadWriteLock', () => {
  it('lets readers overlap', async () => {
    const lock = new KeyedReadWriteLock();
    const log: string[] = [];
    const r1 = gate();
    const r2 = gate();
    const runs = [lock.read('net', tracked(log, 'r1', r1.promise)), lock.read('net', tracked(log, 'r2', r2.promise))];
    await settle();
    expect(log).toEqual(['r1 start', 'r2 start']);
    r2.open();
    r1.open();
    expect(await Promise.all(runs)).toEqual(['r1', 'r2']);
  });

  it('keeps a writer out while readers hold the key, and readers out while a writer does', async () => {
    const lock = new KeyedReadWriteLock();
    const log: string[] = [];
    const r = gate();
    const w = gate();
    const w2 = gate();
    const read = lock.read('net', tracked(log, 'r', r.promise));
    const write = lock.write('net', tracked(log, 'w', w.promise));
    await settle();
    expect(log).toEqual(['r start']);

    r.open();
    await read;
    await settle();
    expect(log).toEqual(['r start', 'r end', 'w start']);

    const laterRead = lock.read('net', tracked(log, 'r-late', Promise.resolve()));
    const secondWrite = lock.write('net', tracked(log, 'w2', w2.promise));
    await settle();
    expect(log).toEqual(['r start', 'r end', 'w start']);

    w.open();
    await write;
    await laterRead;
    await settle();
    expect(log).toEqual(['r start', 'r end', 'w start', 'w end', 'r-late start', 'r-late end', 'w2 start']);
    w2.open();
    await secondWrite;
  });

  it('does not starve a waiting writer: readers that come after it wait behind it', async () => {
    const lock = new KeyedReadWriteLock();
    const log: string[] = [];
    const first = gate();
    const writer = gate();
    const runs = [
      lock.read('net', tracked(log, 'r1', first.promise)),
      lock.write('net', tracked(log, 'w', writer.promise)),
    ];
    await settle();
    // A stream of new readers while r1 still reads: none may jump ahead of the writer.
    for (let i = 2; i <= 5; i++) runs.push(lock.read('net', tracked(log, `r${i}`, Promise.resolve())));
    await settle();
    expect(log).toEqual(['r1 start']);

    first.open();
    await settle();
    expect(log).toEqual(['r1 start', 'r1 end', 'w start']);

    writer.open();
    await Promise.all(runs);
    // The readers queued behind the writer then run together.
    expect(log.slice(0, 4)).toEqual(['r1 start', 'r1 end', 'w start', 'w end']);
    expect(log.slice(4, 8).sort()).toEqual(['r2 start', 'r3 start', 'r4 start', 'r5 start']);
  });

  it('keeps keys apart', async () => {
    const lock = new KeyedReadWriteLock();
    const log: string[] = [];
    const held = gate();
    const write = lock.write('a', tracked(log, 'wa', held.promise));
    await lock.write('b', tracked(log, 'wb', Promise.resolve()));
    await lock.read('c', tracked(log, 'rc', Promise.resolve()));
    expect(log).toEqual(['wa start', 'wb start', 'wb end', 'rc start', 'rc end']);
    held.open();
    await write;
  });

  it('releases the key when a task fails', async () => {
    const lock = new KeyedReadWriteLock();
    await expect(
      lock.write('k', async () => {
        throw new Error('write failed');
      }),
    ).rejects.toThrow('write failed');
    await expect(
      lock.read('k', async () => {
        throw new Error('read failed');
      }),
    ).rejects.toThrow('read failed');
    await expect(lock.write('k', async () => 'free again')).resolves.toBe('free again');
  });

  it('property: under any scheduling, a writer is alone and every task completes', async () => {
    const op = fc.record({ key: fc.constantFrom('n1', 'n2'), write: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(op, { minLength: 1, maxLength: 12 }), async (s, ops) => {
        const lock = new KeyedReadWriteLock();
        const readers = new Map<string, number>();
        const writers = new Map<string, number>();
        const runs = ops.map(({ key, write }, i) => {
          const task = async () => {
            if (write) {
              expect(readers.get(key) ?? 0).toBe(0);
              expect(writers.get(key) ?? 0).toBe(0);
              writers.set(key, 1);
            } else {
              expect(writers.get(key) ?? 0).toBe(0);
              readers.set(key, (readers.get(key) ?? 0) + 1);
            }
            await s.schedule(Promise.resolve(), `${write ? 'write' : 'read'} ${i} on ${key}`);
            if (write) writers.set(key, 0);
            else readers.set(key, readers.get(key)! - 1);
            return i;
          };
          return write ? lock.write(key, task) : lock.read(key, task);
        });
        await s.waitFor(Promise.all(runs));
        expect(await Promise.all(runs)).toEqual(ops.map((_, i) => i));
      }),
      { numRuns: 100 },
    );
  });
});
