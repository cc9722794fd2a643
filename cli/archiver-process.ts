import path from 'node:path';
import { spawnProcessGroup, type ProcessGroup } from '../emulators/pubsub/process-group';
import { silentLogger, type Logger } from '../shared/log';

export interface ArchiverProcessOptions {
  /** The mesh's environment; PUBSUB_EMULATOR_HOST should be the emulator itself (the archiver only pulls). */
  env: Record<string, string>;
  maxBatchMs?: number;
  onLog?: (line: string) => void;
  logger: Logger;
  startTimeoutMs?: number;
}

export interface ArchiverProcess {
  /** Pid of the archiver running now (it changes when the supervisor restarts it). */
  readonly pid: number;
  readonly restarts: number;
  /** SIGKILL, as a crash: the supervisor starts a new one. */
  kill(): Promise<void>;
  /** Clean stop: the archiver writes and acknowledges what it holds; not restarted. */
  stop(): Promise<void>;
}

const ROOT = path.resolve(__dirname, '..');
const START_TIMEOUT_MS = 30_000;
/** Long enough for the quiet wait and the last write of a clean stop. */
const STOP_GRACE_MS = 20_000;
const RESTART_BACKOFF_MS = 500;
const MAX_RESTART_BACKOFF_MS = 10_000;

async function spawnArchiver(options: ArchiverProcessOptions): Promise<ProcessGroup> {
  const timeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
  let ready: () => void = () => undefined;
  const announced = new Promise<void>((resolve) => (ready = resolve));
  const group = await spawnProcessGroup(
    process.execPath,
    [
      '--require',
      require.resolve('tsx/cjs'),
      path.join(ROOT, 'cli', 'archiver-main.ts'),
      ...(options.maxBatchMs ? ['--max-batch-ms', String(options.maxBatchMs)] : []),
    ],
    {
      env: { ...process.env, ...options.env },
      cwd: ROOT,
      logger: silentLogger,
      killWithParent: true,
      tailLines: 20,
      onLine: (line, stream) => {
        if (stream === 'stdout' && line === 'ARCHIVER_READY') ready();
        else options.onLog?.(line);
      },
    },
  );
  let timer: NodeJS.Timeout | undefined;
  const diedFirst = group.exited().then(async ({ exitCode }) => {
    await group.outputClosed(1_000);
    throw new Error(`the archiver exited with code ${exitCode} before it was ready: ${group.outputTail()}`);
  });
  diedFirst.catch(() => undefined);
  await Promise.race([
    announced,
    diedFirst,
    new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(
          () => reject(new Error(`the archiver did not start within ${timeoutMs} ms: ${group.outputTail()}`)),
          timeoutMs,
        )),
    ),
  ])
    .catch(async (error: unknown) => {
      await group.kill().catch(() => undefined);
      throw error;
    })
    .finally(() => clearTimeout(timer));
  return group;
}

/**
 * Starts the archiver in its own process and keeps it running: one that dies is started again
 * (with a doubling backoff); what it held unacknowledged is redelivered to the new one by Pub/Sub.
 */
export async function startArchiverProcess(options: ArchiverProcessOptions): Promise<ArchiverProcess> {
  let current = await spawnArchiver(options);
  let restarts = 0;
  let stopping = false;
  let backoffMs = RESTART_BACKOFF_MS;
  const watch = (group: ProcessGroup) => {
    void group.exited().then(async ({ exitCode, signal }) => {
      if (stopping || group !== current) return;
      options.logger.error('the archiver exited; restarting it', { pid: group.pid, exitCode, signal, backoffMs });
      while (!stopping) {
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
        backoffMs = Math.min(backoffMs * 2, MAX_RESTART_BACKOFF_MS);
        if (stopping) return;
        try {
          current = await spawnArchiver(options);
          restarts++;
          backoffMs = RESTART_BACKOFF_MS;
          options.logger.info('the archiver runs again', { pid: current.pid, restarts });
          watch(current);
          return;
        } catch (error) {
          options.logger.error('the archiver did not start again; trying later', { error, backoffMs });
        }
      }
    });
  };
  watch(current);
  return {
    get pid() {
      return current.pid;
    },
    get restarts() {
      return restarts;
    },
    kill: () => current.kill(),
    async stop() {
      stopping = true;
      await current.stop(STOP_GRACE_MS);
    },
  };
}
