/**
 * The Storage emulator's data-dir lock on a real filesystem with real processes: a live holder
 * keeps it, a holder that is gone or a zombie (killed, not yet reaped by its parent: what a crashed
 * `spine dev` is for a moment) does not.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { acquireDataDirLock } from '../../emulators/storage/data-dir-lock';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'spine-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lockFile = () => path.join(dir, 'emulator.lock');

test('a lock held by a running process is refused, naming the process', async () => {
  const holder = spawn('sleep', ['30']);
  try {
    await writeFile(lockFile(), String(holder.pid));
    await expect(acquireDataDirLock(dir)).rejects.toThrow(`pid ${holder.pid} holds it`);
  } finally {
    holder.kill('SIGKILL');
  }
});

test('a lock left by a process that no longer runs is taken over', async () => {
  const gone = spawn('true');
  await new Promise((resolve) => gone.once('exit', resolve));
  await writeFile(lockFile(), String(gone.pid));
  const release = await acquireDataDirLock(dir);
  expect(await readFile(lockFile(), 'utf8')).toBe(String(process.pid));
  await release();
});

test('a lock left by a zombie (killed, not yet reaped) is taken over', async () => {
  // `sleep 0` ends at once, but its parent becomes `sleep 30`, which never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30']);
  try {
    const zombie = await new Promise<number>((resolve) =>
      createInterface({ input: parent.stdout! }).once('line', (line) => resolve(Number(line))),
    );
    for (let i = 0; i < 100; i++) {
      const stat = await readFile(`/proc/${zombie}/stat`, 'utf8').catch(() => '');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await writeFile(lockFile(), String(zombie));
    const release = await acquireDataDirLock(dir);
    expect(await readFile(lockFile(), 'utf8')).toBe(String(process.pid));
    await release();
  } finally {
    parent.kill('SIGKILL');
  }
});
