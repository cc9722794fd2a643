/**
 * `npm run emulators`: starts the local Pub/Sub, Cloud Storage and Cloud Tasks emulators, prints
 * the environment that points the official clients at them as KEY=value lines on stdout (logs go
 * to stderr), and stops them all on Ctrl-C, SIGTERM or SIGHUP.
 *
 *   npm run emulators -- --project spine-local --pubsub-port 8085
 */
import { readFileSync } from 'node:fs';
import { readFlags, parseSettings, SETTINGS, settingNames, type SettingSpec } from '../shared/settings';
import { shownDefault } from '../shared/settings/docs';
import { logThreshold, type Logger, type Severity } from '../shared/log';
import { startEmulators, type EmulatorPart } from './all';

export interface EmulatorsCliSettings {
  projectId: string;
  dataDir?: string;
  /** 0 = any free port. */
  ports: Record<EmulatorPart, number>;
  help: boolean;
}

const HELP_FLAG = { help: { type: 'boolean', short: 'h' } } as const;

export const USAGE = [
  'Usage: npm run emulators -- [options]',
  '',
  'Starts the Pub/Sub, Cloud Storage and Cloud Tasks emulators and prints their environment',
  '(KEY=value lines) on stdout. Stop with Ctrl-C.',
  '',
  'Options (flag, then environment variable, then default):',
  ...settingNames('emulators').flatMap((name) => {
    const setting = SETTINGS[name] as SettingSpec<unknown>;
    if (!setting.flag) return [];
    return `  --${setting.flag.padEnd(14)} ${setting.description} (default: ${shownDefault(setting)}) [${setting.variable}]`;
  }),
  '  -h, --help       show this help',
].join('\n');

/** Reads the settings from argv and env through the one settings parser (pure, so tests can inject both); errors name the flag. */
export function parseCliSettings(argv: readonly string[], env: NodeJS.ProcessEnv): EmulatorsCliSettings {
  const flags = readFlags('emulators', argv, HELP_FLAG);
  const settings = parseSettings('emulators', { flags, env });
  return {
    projectId: settings.emulatorsProject,
    dataDir: settings.emulatorsDataDir,
    ports: { pubsub: settings.pubsubPort, storage: settings.storagePort, tasks: settings.tasksPort },
    help: flags.help === true,
  };
}

/** The environment as KEY=value lines (usable with `set -a; . file`, `docker --env-file`, dotenv). */
export function formatEnv(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([key, value]) => `${key}=${value}\n`)
    .join('');
}

export async function main(
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let settings: EmulatorsCliSettings;
  try {
    settings = parseCliSettings(argv, env);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (settings.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const logger = createStderrLogger('emulators');
  // Listen before starting: a Ctrl-C during start-up must still stop what was started.
  const shutdown = Promise.race([shutdownSignal(logger), launcherGone()]);

  let emulators;
  try {
    emulators = await startEmulators({
      projectId: settings.projectId,
      dataDir: settings.dataDir,
      ports: settings.ports,
      logger,
    });
  } catch (error) {
    logger.error('could not start the emulators', { error });
    return 1;
  }
  process.stdout.write(formatEnv(emulators.env()));

  const reason = await shutdown;
  logger.info('stopping the emulators', { reason });
  try {
    await emulators.stop();
  } catch (error) {
    logger.error('could not stop every emulator', { error });
    return 1;
  }
  logger.info('emulators stopped');
  return 0;
}

/** Resolves on the first SIGINT/SIGTERM/SIGHUP; later ones are logged, since stopping is already bounded. */
function shutdownSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received: NodeJS.Signals | undefined;
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(signal, () => {
        if (received) logger.info('already stopping', { signal });
        else resolve((received = signal));
      });
    }
  });
}

/**
 * Resolves when the processes that launched this one are gone. `npm run` passes a SIGTERM on to
 * its `sh -c`, which dies without passing it further, orphaning tsx and this process with the
 * emulators still running. Watches the parent and the parent's parent; Linux only (/proc).
 */
function launcherGone(intervalMs = 500): Promise<string> {
  const parent = process.ppid;
  const grandparent = parentOf(parent);
  if (grandparent === undefined) return new Promise(() => undefined);
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (process.ppid === parent && parentOf(parent) === grandparent) return;
      clearInterval(timer);
      resolve('launcher exited');
    }, intervalMs);
    timer.unref();
  });
}

/** The parent pid of `pid` from /proc; undefined where there is no /proc or no such process. */
function parentOf(pid: number): number | undefined {
  try {
    // "pid (command name) state ppid ...": the name may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

const severityRank: Record<Severity, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 };

/**
 * The shape of shared/log's logger, but every entry goes to stderr: stdout carries only the
 * KEY=value lines, so it can be read by a program.
 */
function createStderrLogger(component: string, base: Record<string, unknown> = {}): Logger {
  const threshold = logThreshold();
  const write = (severity: Severity) => (message: string, fields?: Record<string, unknown>) => {
    if (severityRank[severity] < threshold) return;
    const entry = { severity, message, component, ...base, ...fields, time: new Date().toISOString() };
    process.stderr.write(
      `${JSON.stringify(entry, (_key, value: unknown) => (value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value))}\n`,
    );
  };
  return {
    debug: write('DEBUG'),
    info: write('INFO'),
    warn: write('WARNING'),
    error: write('ERROR'),
    child: (fields) => createStderrLogger(component, { ...base, ...fields }),
  };
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
