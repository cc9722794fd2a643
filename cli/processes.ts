/** What Linux's /proc says about processes: parents, command lines, trees. Empty answers elsewhere. */
import { readFile, readdir } from 'node:fs/promises';

async function stat(pid: number): Promise<string> {
  return readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
}

/** The fields after the command name, which may itself hold spaces and parentheses. */
function fieldsAfterName(statLine: string): string[] {
  return statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
}

export async function parentPid(pid: number): Promise<number | undefined> {
  const ppid = Number(fieldsAfterName(await stat(pid))[1]);
  return Number.isSafeInteger(ppid) && ppid > 0 ? ppid : undefined;
}

export async function commandLine(pid: number): Promise<string> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return raw.split('\0').filter(Boolean).join(' ');
}

/** Running and not a zombie (a zombie has exited; only its status waits for its parent). */
export async function isRunning(pid: number): Promise<boolean> {
  const line = await stat(pid);
  return line !== '' && fieldsAfterName(line)[0] !== 'Z';
}

/** Every process below `root` (children, grandchildren…), not `root` itself. */
export async function descendants(root: number): Promise<number[]> {
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((name) => /^\d+$/.test(name)).map(Number);
  const parents = new Map(await Promise.all(pids.map(async (pid) => [pid, await parentPid(pid)] as const)));
  const isBelow = (pid: number) => {
    for (
      let current = parents.get(pid), depth = 0;
      current !== undefined && depth < 64;
      current = parents.get(current), depth++
    ) {
      if (current === root) return true;
    }
    return false;
  };
  return pids.filter(isBelow);
}
