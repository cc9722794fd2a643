import { createLogger, type Logger } from '../shared/log';
import {
  DEFAULT_PROJECT_ID,
  EmulatorError,
  startPubSubEmulator,
  type PubSubEmulator,
  type PubSubEmulatorOptions,
} from './pubsub';
import { startStorageEmulator, type StorageEmulator } from './storage';
import { startTasksEmulator, type TasksEmulator } from './tasks';

export type EmulatorPart = 'pubsub' | 'storage' | 'tasks';
export const EMULATOR_PARTS: readonly EmulatorPart[] = ['pubsub', 'storage', 'tasks'];

export interface StartEmulatorsOptions {
  /** Project the emulators and clients use; default 'spine-local'. */
  projectId?: string;
  /** Where the storage emulator keeps objects; in memory when unset. */
  dataDir?: string;
  /** Each part is started unless set to false. */
  pubsub?: boolean;
  storage?: boolean;
  tasks?: boolean;
  /** Fixed ports; a free port is picked for each part not listed (or listed as 0). */
  ports?: Partial<Record<EmulatorPart, number>>;
  /** Options passed to the Pub/Sub emulator (launcher, javaHeap, env). */
  pubsubOptions?: Omit<PubSubEmulatorOptions, 'port' | 'projectId' | 'logger'>;
  logger?: Logger;
}

export interface LocalEmulators {
  readonly projectId: string;
  /** Undefined when that part was not asked for. */
  readonly pubsub?: PubSubEmulator;
  readonly storage?: StorageEmulator;
  readonly tasks?: TasksEmulator;
  /** Milliseconds until every part answered. */
  readonly startupMs: number;
  /**
   * What a process needs to use these emulators with the official clients:
   * PUBSUB_EMULATOR_HOST, PUBSUB_PROJECT_ID, STORAGE_EMULATOR_HOST, CLOUD_TASKS_EMULATOR_HOST,
   * GOOGLE_CLOUD_PROJECT and METADATA_SERVER_DETECTION=none.
   */
  env(): Record<string, string>;
  /** Stops every part (in parallel); safe to call more than once. */
  stop(): Promise<void>;
}

/** One or more parts did not start; the parts that did were stopped again. */
export class EmulatorsStartError extends EmulatorError {
  constructor(readonly failures: ReadonlyArray<{ part: EmulatorPart; error: unknown }>) {
    super(
      'EMULATOR_START_FAILED',
      `could not start the local emulators: ${failures.map(({ part, error }) => `${part} failed (${describe(error)})`).join('; ')}`,
      { cause: failures[0]?.error },
    );
  }

  get failedParts(): EmulatorPart[] {
    return this.failures.map(({ part }) => part);
  }
}

type Started = { pubsub?: PubSubEmulator; storage?: StorageEmulator; tasks?: TasksEmulator };

/** Starts the Pub/Sub, Cloud Storage and Cloud Tasks emulators in parallel, each on a free port. */
export async function startEmulators(options: StartEmulatorsOptions = {}): Promise<LocalEmulators> {
  const projectId = options.projectId ?? DEFAULT_PROJECT_ID;
  const logger = options.logger ?? createLogger('emulators');
  const ports = options.ports ?? {};
  const startedAt = performance.now();

  // async, so a starter that throws synchronously is a failed part, not a leak of the others.
  const starters: { [P in EmulatorPart]: () => Promise<NonNullable<Started[P]>> } = {
    pubsub: async () =>
      startPubSubEmulator({
        ...options.pubsubOptions,
        port: ports.pubsub,
        projectId,
        logger: logger.child({ part: 'pubsub' }),
      }),
    storage: async () =>
      startStorageEmulator({
        port: ports.storage,
        dataDir: options.dataDir,
        logger: logger.child({ part: 'storage' }),
      }),
    tasks: async () => startTasksEmulator({ port: ports.tasks, logger: logger.child({ part: 'tasks' }) }),
  };
  const parts = EMULATOR_PARTS.filter((part) => options[part] !== false);
  const outcomes = await Promise.allSettled(parts.map((part) => starters[part]()));

  const started: Started = {};
  const failures: { part: EmulatorPart; error: unknown }[] = [];
  outcomes.forEach((outcome, index) => {
    const part = parts[index]!;
    if (outcome.status === 'fulfilled') Object.assign(started, { [part]: outcome.value });
    else failures.push({ part, error: outcome.reason });
  });

  const stop = stopOnce(started, logger);
  if (failures.length > 0) {
    await stop().catch((error: unknown) => logger.warn('could not stop an emulator after a failed start', { error }));
    throw new EmulatorsStartError(failures);
  }

  const startupMs = Math.round(performance.now() - startedAt);
  const emulators: LocalEmulators = {
    projectId,
    ...started,
    startupMs,
    env: () => emulatorsEnv(projectId, started),
    stop,
  };
  logger.info('emulators ready', { startupMs, parts, ...emulators.env() });
  return emulators;
}

function emulatorsEnv(projectId: string, { pubsub, storage, tasks }: Started): Record<string, string> {
  return {
    ...(pubsub && pubsub.env()),
    ...(storage && { STORAGE_EMULATOR_HOST: storage.url }),
    ...(tasks && { CLOUD_TASKS_EMULATOR_HOST: tasks.address }),
    GOOGLE_CLOUD_PROJECT: projectId,
    // Without it the Google clients probe the metadata server and print a warning.
    METADATA_SERVER_DETECTION: 'none',
  };
}

function stopOnce(started: Started, logger: Logger): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      const running = EMULATOR_PARTS.flatMap((part) => {
        const handle = started[part];
        return handle ? [{ part, handle }] : [];
      });
      const outcomes = await Promise.allSettled(running.map(({ handle }) => handle.stop()));
      const failed = outcomes.flatMap((outcome, index) =>
        outcome.status === 'rejected' ? [{ part: running[index]!.part, error: outcome.reason as unknown }] : [],
      );
      for (const { part, error } of failed) logger.error('emulator did not stop', { part, error });
      if (failed.length > 0)
        throw new Error(`could not stop: ${failed.map(({ part }) => part).join(', ')}`, { cause: failed[0]!.error });
    })());
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0]! : String(error);
}
