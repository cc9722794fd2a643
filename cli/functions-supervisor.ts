/**
 * Keeps the functions process of the local mesh running: one that dies is started again on the
 * same ports (so every URL the mesh handed out stays valid), with a backoff that doubles from
 * `initialBackoffMs` to `maximumBackoffMs` and starts over after a healthy `healthyResetMs`.
 */
import type { Logger } from '../shared/log';
import type { FunctionsProcess } from './functions-process';

/** In the data dir while `spine dev` runs: what it supervises, for `spine health`. */
export const PROCESSES_FILE = 'processes.json';

export interface SupervisionStatus {
  state: 'running' | 'restarting' | 'stopped';
  pid: number;
  /** Restarts after unexpected exits since the mesh started. */
  restarts: number;
  lastExit?: { exitCode: number | null; signal: string | null; at: string };
  /** When the current process started. */
  since: string;
}

export interface SupervisorOptions {
  start: () => Promise<FunctionsProcess>;
  logger: Logger;
  initialBackoffMs?: number;
  maximumBackoffMs?: number;
  healthyResetMs?: number;
  /** After a restart (the relay retries at once), and on every change of status. */
  onRestarted?: () => void;
  onStatus?: (status: SupervisionStatus) => void;
}

export interface FunctionsSupervisor {
  readonly current: FunctionsProcess;
  status(): SupervisionStatus;
  /** Replaces the process on purpose (a test's crash or a clean restart): not counted as a failure. */
  replace(stopCurrent: (current: FunctionsProcess) => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export function superviseFunctions(first: FunctionsProcess, options: SupervisorOptions): FunctionsSupervisor {
  const initial = options.initialBackoffMs ?? 500;
  const maximum = options.maximumBackoffMs ?? 10_000;
  const healthyResetMs = options.healthyResetMs ?? 60_000;
  let current = first;
  // Stopped through the mesh's API (a test, a clean restart): not a crash, not restarted.
  const stoppedOnPurpose = new WeakSet<FunctionsProcess>();
  const handle = (process: FunctionsProcess): FunctionsProcess => ({
    ...process,
    stop: () => {
      stoppedOnPurpose.add(process);
      return process.stop();
    },
  });
  let backoffMs = initial;
  let startedAt = Date.now();
  let stopping = false;
  let replacing = false;
  let wake: (() => void) | undefined;
  const status: SupervisionStatus = {
    state: 'running',
    pid: first.pid,
    restarts: 0,
    since: new Date(startedAt).toISOString(),
  };
  const changed = () => options.onStatus?.({ ...status });

  const watch = (process: FunctionsProcess) => {
    void process.exited().then(async ({ exitCode, signal }) => {
      if (stopping || replacing || process !== current) return;
      if (stoppedOnPurpose.has(process)) {
        status.state = 'stopped';
        changed();
        return;
      }
      status.lastExit = { exitCode, signal, at: new Date().toISOString() };
      status.state = 'restarting';
      if (Date.now() - startedAt >= healthyResetMs) backoffMs = initial;
      options.logger.error('the functions process exited; restarting it', {
        pid: process.pid,
        exitCode,
        signal,
        backoffMs,
        restarts: status.restarts,
      });
      changed();
      for (;;) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoffMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
        backoffMs = Math.min(backoffMs * 2, maximum);
        if (stopping) return;
        try {
          current = await options.start();
          break;
        } catch (error) {
          options.logger.error('the functions process did not start again; trying later', { error, backoffMs });
        }
      }
      if (stopping) {
        await current.stop();
        return;
      }
      startedAt = Date.now();
      status.restarts++;
      status.state = 'running';
      status.pid = current.pid;
      status.since = new Date(startedAt).toISOString();
      options.logger.info('the functions process runs again', { pid: current.pid, restarts: status.restarts });
      changed();
      options.onRestarted?.();
      watch(current);
    });
  };
  watch(first);

  return {
    get current() {
      return handle(current);
    },
    status: () => ({ ...status }),
    async replace(stopCurrent) {
      replacing = true;
      try {
        await stopCurrent(current);
        current = await options.start();
      } finally {
        replacing = false;
      }
      status.state = 'running';
      status.pid = current.pid;
      status.since = new Date().toISOString();
      changed();
      options.onRestarted?.();
      watch(current);
    },
    async stop() {
      stopping = true;
      wake?.();
      status.state = 'stopped';
      await current.stop();
    },
  };
}
