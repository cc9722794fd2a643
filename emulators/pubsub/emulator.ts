import { createLogger, type Logger } from '../../shared/log';
import { freePort, isListening, waitUntil } from '../ports';
import { EmulatorError, EmulatorNotInstalledError, EmulatorStartError } from './errors';
import { answersOk } from './health';
import { findJava, looksLikeOldJava } from './java';
import { findPubSubLauncher, launchArgs, type LaunchPlan } from './launcher';
import { spawnProcessGroup, type ProcessGroup } from './process-group';
import { formatAddress, resolvePubSubSettings, type PubSubSettings, type PubSubSettingsInput } from './settings';

export interface PubSubEmulatorOptions extends PubSubSettingsInput {
  /** Launcher script to run; defaults to SPINE_PUBSUB_EMULATOR, then the Cloud SDK's. */
  launcher?: string;
  logger?: Logger;
  /** Environment used to find `gcloud`/`java` and given to the emulator; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/** The variables the official clients read to talk to this emulator. */
export interface PubSubEmulatorEnv {
  PUBSUB_EMULATOR_HOST: string;
  PUBSUB_PROJECT_ID: string;
  [key: string]: string;
}

export interface PubSubEmulator {
  readonly host: string;
  readonly port: number;
  /** host:port, the `apiEndpoint` for `new PubSub(...)` and the value of PUBSUB_EMULATOR_HOST. */
  readonly address: string;
  readonly projectId: string;
  /** Pid of the emulator's process group leader. */
  readonly pid: number;
  /** Milliseconds from spawn until the emulator answered. */
  readonly startupMs: number;
  env(): PubSubEmulatorEnv;
  /** Stops the emulator and everything it started; safe to call more than once. */
  stop(): Promise<void>;
}

// A port picked by freePort can be taken by someone else before Java binds it.
const ATTEMPTS_ON_PORT_RACE = 3;

/**
 * Starts the official Pub/Sub emulator (state in memory only) and resolves once it answers.
 * Throws {@link EmulatorNotInstalledError} when the emulator or Java is missing and
 * {@link EmulatorStartError} when it does not come up.
 */
export async function startPubSubEmulator(options: PubSubEmulatorOptions = {}): Promise<PubSubEmulator> {
  const settings = resolvePubSubSettings(options);
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger('pubsub-emulator');
  const plan = await findPubSubLauncher({ launcher: options.launcher, env });
  findJava(env);

  for (let attempt = 1; ; attempt++) {
    const port = settings.port || (await freePort(settings.host));
    if (settings.port && (await isListening(port, settings.host))) {
      throw new EmulatorStartError('pubsub', `port ${port} on ${settings.host} is already in use`);
    }
    try {
      return await launch(plan, port, settings, env, logger);
    } catch (error) {
      const portRace = error instanceof PortTakenError && !settings.port && attempt < ATTEMPTS_ON_PORT_RACE;
      if (!portRace) throw error instanceof PortTakenError ? error.asStartError() : error;
      logger.warn('port was taken before the emulator bound it; retrying on another', { port, attempt });
    }
  }
}

async function launch(
  plan: LaunchPlan,
  port: number,
  settings: PubSubSettings,
  env: NodeJS.ProcessEnv,
  parentLogger: Logger,
): Promise<PubSubEmulator> {
  const { host, projectId } = settings;
  const address = formatAddress(host, port);
  const logger = parentLogger.child({ emulator: 'pubsub', address });
  const startedAt = performance.now();
  const group = await spawnProcessGroup(plan.command, launchArgs(plan, host, port, projectId), {
    env: emulatorEnv(env, settings.javaHeap),
    logger,
    killWithParent: plan.via === 'launcher',
  });
  logger.debug('pubsub emulator spawned', { pid: group.pid, launcher: plan.command, source: plan.source });

  try {
    await waitUntilReady(group, `http://${address}/`, settings.startTimeoutMs);
  } catch (error) {
    await group.stop(settings.stopGraceMs).catch(() => undefined);
    throw error;
  }
  const startupMs = Math.round(performance.now() - startedAt);
  logger.info('pubsub emulator ready', { pid: group.pid, startupMs, via: plan.via, source: plan.source });

  return {
    host,
    port,
    address,
    projectId,
    pid: group.pid,
    startupMs,
    env: () => ({ PUBSUB_EMULATOR_HOST: address, PUBSUB_PROJECT_ID: projectId }),
    stop: async () => {
      await group.stop(settings.stopGraceMs);
      logger.info('pubsub emulator stopped', { pid: group.pid });
    },
  };
}

function emulatorEnv(env: NodeJS.ProcessEnv, javaHeap: string): NodeJS.ProcessEnv {
  // Ours goes last so it wins over a heap size in an inherited JAVA_OPTS (the JVM takes the last
  // -Xmx); CLOUD_PUBSUB_EMULATOR_OPTS, read after JAVA_OPTS by the launcher, can still override it.
  const javaOpts = [env.JAVA_OPTS, `-Xmx${javaHeap}`].filter(Boolean).join(' ');
  return { ...env, JAVA_OPTS: javaOpts, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' };
}

async function waitUntilReady(group: ProcessGroup, healthUrl: string, timeoutMs: number): Promise<void> {
  try {
    await waitUntil(
      async () => {
        if (group.outputTail().includes('BindException')) throw new PortTakenError(healthUrl, group.outputTail());
        const exit = group.exitStatus();
        if (exit) {
          await group.outputClosed(1_000);
          const output = group.outputTail();
          if (looksLikeOldJava(output)) {
            throw new EmulatorNotInstalledError('java', 'the Java runtime is too old for the Pub/Sub emulator');
          }
          throw new EmulatorStartError('pubsub', 'the process exited before it answered', {
            ...exit,
            outputTail: output,
          });
        }
        return answersOk(healthUrl);
      },
      { timeoutMs, intervalMs: 50, what: `the pubsub emulator at ${healthUrl}` },
    );
  } catch (error) {
    if (error instanceof EmulatorError || error instanceof PortTakenError) throw error;
    throw new EmulatorStartError('pubsub', `it did not answer ${healthUrl} within ${timeoutMs} ms`, {
      outputTail: group.outputTail(),
    });
  }
}

/** Internal: Java could not bind the port (it then hangs instead of exiting, so we look at its output). */
class PortTakenError extends Error {
  constructor(
    readonly url: string,
    readonly outputTail: string,
  ) {
    super(`the port of ${url} is already in use`);
  }
  asStartError(): EmulatorStartError {
    return new EmulatorStartError('pubsub', this.message, { outputTail: this.outputTail });
  }
}
