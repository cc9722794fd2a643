import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { StorageEmulatorSettingError } from './options';

const LOCK_FILE = 'emulator.lock';

/**
 * Claims a data directory for this process: two emulators writing one directory would lose
 * each other's writes. A lock left by a process that no longer runs is taken over.
 * Returns the function that releases it.
 */
export async function acquireDataDirLock(dataDir: string): Promise<() => Promise<void>> {
  await fs.mkdir(dataDir, { recursive: true });
  const lockPath = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(lockPath, String(process.pid), { flag: 'wx' });
      return () => fs.rm(lockPath, { force: true });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
      const owner = Number((await fs.readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && isRunning(owner)) {
        throw new StorageEmulatorSettingError(
          'dataDir',
          dataDir,
          `a folder no other storage emulator uses (pid ${owner} holds it)`,
        );
      }
      await fs.rm(lockPath, { force: true });
    }
  }
  throw new StorageEmulatorSettingError('dataDir', dataDir, 'a folder this emulator can lock');
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** A killed process its parent has not reaped yet still answers signal 0, but holds nothing (Linux: state Z). */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}
