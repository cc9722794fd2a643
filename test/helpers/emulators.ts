import type { Logger } from '../../shared/log';
import type { LocalEmulators, StartEmulatorsOptions } from '../../emulators';

export interface LogEntry {
  severity: 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
  message: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps entries in memory, so tests stay quiet and can assert on what was logged. */
export function createMemoryLogger(
  base: Record<string, unknown> = {},
  entries: LogEntry[] = [],
): Logger & { entries: LogEntry[] } {
  const write = (severity: LogEntry['severity']) => (message: string, fields?: Record<string, unknown>) => {
    entries.push({ severity, message, fields: { ...base, ...fields } });
  };
  return {
    entries,
    debug: write('DEBUG'),
    info: write('INFO'),
    warn: write('WARNING'),
    error: write('ERROR'),
    child: (fields) => createMemoryLogger({ ...base, ...fields }, entries),
  };
}

export interface UseEmulatorsOptions extends StartEmulatorsOptions {
  /** Put the emulators' environment (PUBSUB_EMULATOR_HOST, ...) into process.env for the suite. */
  setEnv?: boolean;
  /** Time allowed to start them (beforeAll hook timeout). */
  startTimeoutMs?: number;
}

/**
 * Starts the local emulators in `beforeAll` and stops them in `afterAll` of the calling suite.
 * The returned handle is filled once `beforeAll` has run; reading it earlier (e.g. at module
 * level) throws, so a test cannot silently talk to nothing.
 *
 * ```ts
 * const emulators = useEmulators({ tasks: false });
 * test('...', async () => { new PubSub({ apiEndpoint: emulators.pubsub.address }) });
 * ```
 */
export function useEmulators(options: UseEmulatorsOptions = {}): EmulatorsHandle {
  const { setEnv = false, startTimeoutMs = 120_000, ...startOptions } = options;
  let running: LocalEmulators | undefined;
  let savedEnv: Record<string, string | undefined> = {};

  beforeAll(async () => {
    // Loaded here so suites that only use the logger above do not load every emulator.
    const { startEmulators } = await import('../../emulators');
    running = await startEmulators({ logger: createMemoryLogger(), ...startOptions });
    if (setEnv) {
      const env = running.env();
      savedEnv = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
      Object.assign(process.env, env);
    }
  }, startTimeoutMs);

  afterAll(async () => {
    for (const [key, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await running?.stop();
    running = undefined;
  }, 30_000);

  const current = (): LocalEmulators => {
    if (!running) throw new Error('useEmulators: the emulators are only available inside tests (after beforeAll)');
    return running;
  };
  const part = <K extends 'pubsub' | 'storage' | 'tasks'>(name: K): NonNullable<LocalEmulators[K]> => {
    const handle = current()[name];
    if (!handle) throw new Error(`useEmulators: ${name} was not started (enable it in the options)`);
    return handle as NonNullable<LocalEmulators[K]>;
  };

  return {
    get current() {
      return current();
    },
    get projectId() {
      return current().projectId;
    },
    get pubsub() {
      return part('pubsub');
    },
    get storage() {
      return part('storage');
    },
    get tasks() {
      return part('tasks');
    },
    env: () => current().env(),
  };
}

export interface EmulatorsHandle {
  /** The running emulators; throws outside tests. */
  readonly current: LocalEmulators;
  readonly projectId: string;
  readonly pubsub: NonNullable<LocalEmulators['pubsub']>;
  readonly storage: NonNullable<LocalEmulators['storage']>;
  readonly tasks: NonNullable<LocalEmulators['tasks']>;
  env(): Record<string, string>;
}
