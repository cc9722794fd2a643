import { readFile, readdir, readlink } from 'node:fs/promises';
import { isPortFree } from '../emulators/ports';
import { commandLine, parentPid } from './processes';

/** A process listening on a port, as far as /proc tells (Linux); undefined elsewhere or when hidden. */
export interface PortOwner {
  pid: number;
  command: string;
  /** The nearest ancestor (or the process itself) that is a `spine dev`, when there is one. */
  spineDevPid?: number;
}

/** Socket inodes listening on `port`, from the kernel's TCP tables (IPv4 and IPv6). */
async function listeningInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // fields: sl, local_address, rem_address, st, queues, tr, retrnsmt, uid, timeout, inode
      const [, local, , state, , , , , , inode] = fields;
      if (state === '0A' && local?.endsWith(`:${portHex}`) && inode && inode !== '0') inodes.add(inode);
    }
  }
  return inodes;
}

export function isSpineDevCommand(command: string): boolean {
  return /cli[/\\]main\.ts dev\b/.test(command) || /\bspine(\.js)? dev\b/.test(command);
}

/** Which process listens on `port`; undefined when /proc does not say (other systems, other users' processes). */
export async function findPortOwner(port: number): Promise<PortOwner | undefined> {
  const inodes = await listeningInodes(port);
  if (inodes.size === 0) return undefined;
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((name) => /^\d+$/.test(name));
  for (const pidText of pids) {
    const fds = await readdir(`/proc/${pidText}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pidText}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (!inode || !inodes.has(inode)) continue;
      const pid = Number(pidText);
      const owner: PortOwner = { pid, command: await commandLine(pid) };
      for (
        let current: number | undefined = pid, depth = 0;
        current && depth < 16;
        current = await parentPid(current), depth++
      ) {
        if (isSpineDevCommand(await commandLine(current))) {
          owner.spineDevPid = current;
          break;
        }
      }
      return owner;
    }
  }
  return undefined;
}

/**
 * One sentence per process holding any of `ports` ("ports 8085 (Pub/Sub emulator), 8086 (…) are
 * taken by …"); empty when all are free.
 */
export async function describeTakenPorts(ports: ReadonlyArray<{ part: string; port: number }>): Promise<string[]> {
  const byOwner = new Map<string, string[]>();
  for (const { part, port } of ports) {
    if (port === 0 || (await isPortFree(port))) continue;
    const owner = await findPortOwner(port);
    const by = !owner
      ? 'another process'
      : owner.spineDevPid
        ? `a running Super Spine mesh (spine dev, pid ${owner.spineDevPid})`
        : `pid ${owner.pid} (${truncate(owner.command, 80)})`;
    byOwner.set(by, [...(byOwner.get(by) ?? []), `${port} (${part})`]);
  }
  return [...byOwner].map(
    ([by, taken]) =>
      `${taken.length === 1 ? 'port' : 'ports'} ${taken.join(', ')} ${taken.length === 1 ? 'is' : 'are'} taken by ${by}`,
  );
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
