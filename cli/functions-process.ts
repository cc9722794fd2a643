import path from 'node:path';
import { spawnProcessGroup } from '../emulators/pubsub/process-group';
import { silentLogger } from '../shared/log';
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
  /** Resolves when the process exits, whoever ended it. */
  exited(): Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>;
}

const ROOT = path.resolve(__dirname, '..');
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

/** Runs `functions/main.ts` as a child process: the functions as a deployment would run them, apart from this process. */
export async function startFunctionsProcess(options: FunctionsProcessOptions): Promise<FunctionsProcess> {
  const env = {
    ...process.env,
    ...options.env,
    ...(options.ports ? { SPINE_FUNCTION_PORTS: JSON.stringify(options.ports) } : {}),
  };
  const timeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
  let ready: (urls: Partial<Record<FunctionName, string>>) => void = () => undefined;
  const announced = new Promise<Partial<Record<FunctionName, string>>>((resolve) => (ready = resolve));
  // Its own process group: a terminal's Ctrl-C reaches only the parent, which drains the mesh
  // through the functions before stopping them; it dies with the parent if that dies first.
  const group = await spawnProcessGroup(
    process.execPath,
    ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'functions', 'main.ts')],
    {
      env,
      cwd: ROOT,
      logger: silentLogger,
      killWithParent: true,
      tailLines: 20,
      onLine: (line, stream) => {
        if (stream === 'stdout' && line.startsWith('FUNCTIONS_READY '))
          ready(JSON.parse(line.slice('FUNCTIONS_READY '.length)));
        else options.onLog?.(line);
      },
    },
  );
  let timer: NodeJS.Timeout | undefined;
  const diedFirst = group.exited().then(async ({ exitCode }) => {
    await group.outputClosed(1_000);
    throw new Error(
      `the functions process exited with code ${exitCode} before it was ready: ${startFailure(group.outputTail().split('\n'))}`,
    );
  });
  // Once ready, a later exit is the caller's stop, not a failed start.
  diedFirst.catch(() => undefined);
  const urls = await Promise.race([
    announced,
    diedFirst,
    new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(
          () => reject(new Error(`functions did not start within ${timeoutMs} ms: ${group.outputTail()}`)),
          timeoutMs,
        )),
    ),
  ])
    .catch(async (error: unknown) => {
      await group.kill().catch(() => undefined);
      throw error;
    })
    .finally(() => clearTimeout(timer));
  const ports = Object.fromEntries(
    Object.entries(urls).map(([name, url]) => [name, Number(new URL(url!).port)]),
  ) as Partial<Record<FunctionName, number>>;
  return {
    pid: group.pid,
    urls,
    ports,
    stop: () => group.stop(STOP_GRACE_MS),
    kill: () => group.kill(),
    exited: () => group.exited(),
  };
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
