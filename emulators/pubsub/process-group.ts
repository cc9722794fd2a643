import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../../shared/log';
import { waitUntil } from '../ports';
import { findOnPath } from './executables';

/**
 * A child process started as the leader of its own process group, so that stopping it also stops
 * whatever it started (the emulator launcher is a shell script that execs Java; `gcloud` keeps
 * a Python parent in front of Java). The group is SIGKILLed when this Node process exits.
 */
export interface ExitStatus {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcessGroup {
  /** Pid of the leader, which is also the process group id. */
  readonly pid: number;
  /** Set once the leader has exited. */
  exitStatus(): ExitStatus | undefined;
  /** The last lines written to stdout and stderr, Java stack frames left out. */
  outputTail(): string;
  /** Resolves once the output pipes have closed (so outputTail is complete), or after `timeoutMs`. */
  outputClosed(timeoutMs: number): Promise<void>;
  /** Resolves when the leader exits. */
  exited(): Promise<ExitStatus>;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once no process of the group is left. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL to the group (a crash); resolves once no process of the group is left. */
  kill(): Promise<void>;
}

export interface SpawnGroupOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  logger: Logger;
  /** Takes each line of output instead of the logger's debug level. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /**
   * Also ask the kernel to SIGKILL the process if this one dies without running its 'exit'
   * handlers (SIGKILL, crash; tsx SIGKILLs a child that is slow to acknowledge a signal).
   * Linux only, through util-linux `setpriv --pdeathsig`; the process must exec its way to the
   * real server (the emulator launcher does) because the setting does not pass to forked children.
   */
  killWithParent?: boolean;
  /** Lines of output kept for error reports. */
  tailLines?: number;
}

/** Starts `command` in a new process group; rejects if it cannot be spawned at all. */
export async function spawnProcessGroup(
  command: string,
  args: string[],
  options: SpawnGroupOptions,
): Promise<ProcessGroup> {
  const setpriv =
    options.killWithParent && process.platform === 'linux' ? findOnPath('setpriv', options.env) : undefined;
  const [file, argv] = setpriv ? [setpriv, ['--pdeathsig', 'SIGKILL', '--', command, ...args]] : [command, args];
  const child = spawn(file, argv, {
    env: options.env,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`spawned ${command} but got no pid`);
  killOnExit(pid);

  const tail = collectOutput(
    child,
    options.onLine ?? ((line, stream) => options.logger.debug(line, { stream })),
    options.tailLines ?? 40,
  );
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const outputClosed = async (timeoutMs: number) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  };
  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) =>
    child.once('exit', (exitCode, signal) => {
      exitStatus = { exitCode, signal };
      options.logger.debug('process exited', { pid, exitCode, signal });
      if (!isGroupAlive(pid)) liveGroups.delete(pid);
      resolve(exitStatus);
    }),
  );

  const groupGone = (timeoutMs: number) =>
    waitUntil(() => exitStatus !== undefined && !isGroupAlive(pid), {
      timeoutMs,
      intervalMs: 25,
      what: `process group ${pid} to exit`,
    }).then(
      () => true,
      () => false,
    );

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5_000): Promise<void> =>
    (stopping ??= (async () => {
      signalGroup(pid, 'SIGTERM');
      if (!(await groupGone(graceMs))) {
        options.logger.warn('process group did not stop after SIGTERM; sending SIGKILL', { pid, graceMs });
        await kill();
      }
      liveGroups.delete(pid);
    })());
  const kill = async (): Promise<void> => {
    signalGroup(pid, 'SIGKILL');
    if (!(await groupGone(5_000))) throw new Error(`process group ${pid} is still alive after SIGKILL`);
    liveGroups.delete(pid);
  };

  return {
    pid,
    exitStatus: () => exitStatus,
    exited: () => exited,
    outputTail: () => tail.join('\n'),
    outputClosed,
    stop,
    kill: () => (stopping ??= kill()),
  };
}

/**
 * True while any process of group `pgid` exists (a zombie leader counts until Node reaps it).
 * @internal How the emulator's process group is stopped; exported for its tests.
 */
export function isGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

const javaStackFrame = /^\s+(at |\.\.\. \d+ more)/;

function collectOutput(
  child: ChildProcess,
  onLine: (line: string, stream: 'stdout' | 'stderr') => void,
  keep: number,
): string[] {
  const tail: string[] = [];
  for (const [stream, input] of [
    ['stdout', child.stdout],
    ['stderr', child.stderr],
  ] as const) {
    if (!input) continue;
    createInterface({ input, crlfDelay: Infinity }).on('line', (line) => {
      onLine(line, stream);
      // Stack frames would push the exception line itself out of a short tail.
      if (javaStackFrame.test(line)) return;
      tail.push(line);
      if (tail.length > keep) tail.shift();
    });
  }
  return tail;
}

/**
 * Groups to SIGKILL if this process exits without stopping them. 'exit' handlers must be
 * synchronous, and SIGKILL is safe here: the emulators keep nothing worth flushing.
 */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function killOnExit(pgid: number): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const group of liveGroups) {
        try {
          process.kill(-group, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    });
  }
  liveGroups.add(pgid);
}
