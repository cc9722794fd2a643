import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { findOnPath } from '../emulators/pubsub/executables';
import type { FunctionName } from '../shared/topology';

export interface FunctionsProcessOptions {
  env: Record<string, string>;
  /** Fixed ports (a restart reuses the first start's ports so push endpoints stay valid). */
  ports?: Partial<Record<FunctionName, number>>;
  /** Called with each line the process logs. */
  onLog?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface FunctionsProcess {
  readonly pid: number;
  readonly urls: Partial<Record<FunctionName, string>>;
  readonly ports: Partial<Record<FunctionName, number>>;
  /** Clean stop: in-flight requests finish. */
  stop(): Promise<void>;
  /** A crash: SIGKILL, nothing finishes. */
  kill(): Promise<void>;
}

const ROOT = path.resolve(__dirname, '..');

/** Runs `functions/main.ts` as a child process: the functions as a deployment would run them, apart from this process. */
export async function startFunctionsProcess(options: FunctionsProcessOptions): Promise<FunctionsProcess> {
  const env = { ...process.env, ...options.env, ...(options.ports ? { SPINE_FUNCTION_PORTS: JSON.stringify(options.ports) } : {}) };
  const command = [process.execPath, '--require', require.resolve('tsx/cjs'), path.join(ROOT, 'functions', 'main.ts')];
  // Its own process group: a terminal's Ctrl-C reaches only the parent, which drains the mesh
  // through the functions before stopping them. setpriv ends it if the parent dies without that.
  const setpriv = process.platform === 'linux' ? findOnPath('setpriv', env) : undefined;
  const [file, ...args] = setpriv ? [setpriv, '--pdeathsig', 'SIGTERM', '--', ...command] : command;
  const child = spawn(file!, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.removeListener('exit', killOnExit));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const errorTail: string[] = [];
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    errorTail.push(line);
    if (errorTail.length > 20) errorTail.shift();
    options.onLog?.(line);
  });
  const urls = await new Promise<Partial<Record<FunctionName, string>>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`functions did not start within ${options.startTimeoutMs ?? 30_000} ms: ${errorTail.join('\n')}`)), options.startTimeoutMs ?? 30_000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('FUNCTIONS_READY ')) {
        clearTimeout(timer);
        resolve(JSON.parse(line.slice('FUNCTIONS_READY '.length)));
      } else options.onLog?.(line);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the functions process exited with code ${code} before it was ready: ${startFailure(errorTail)}`));
    });
  }).catch(async (error) => {
    child.kill('SIGKILL');
    throw error;
  });
  const ports = Object.fromEntries(Object.entries(urls).map(([name, url]) => [name, Number(new URL(url!).port)])) as Partial<Record<FunctionName, number>>;
  return {
    pid: child.pid!,
    urls,
    ports,
    stop: () => stopChild(child, exited, 'SIGTERM'),
    kill: () => stopChild(child, exited, 'SIGKILL'),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Why the functions did not start, from the last error they logged (JSON), else the raw tail. */
function startFailure(errorTail: readonly string[]): string {
  for (const line of [...errorTail].reverse()) {
    try {
      const entry = JSON.parse(line) as { severity?: string; message?: string; error?: { message?: string } };
      if (entry.severity === 'ERROR') return entry.error?.message ?? entry.message ?? line;
    } catch {
      // not a log entry
    }
  }
  return errorTail.join('\n');
}
