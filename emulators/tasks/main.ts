/**
 * Runs the Cloud Tasks emulator until SIGINT/SIGTERM:
 *
 *   npx tsx emulators/tasks/main.ts [--host 127.0.0.1] [--port 8123]
 *
 * Settings: flag, then environment (CLOUD_TASKS_EMULATOR_LISTEN_HOST, CLOUD_TASKS_EMULATOR_PORT),
 * then default (127.0.0.1, a free port). Prints `CLOUD_TASKS_EMULATOR_HOST=host:port` once it listens.
 */
import { createLogger } from '../../shared/log';
import { parseSettings } from '../../shared/settings';
import { startTasksEmulator } from './server';

export interface MainOptions {
  host: string;
  port: number;
}

/** Flags, then environment, then defaults, through the one settings parser; throws a SettingError naming the flag. */
export function parseMainOptions(argv: string[], env: NodeJS.ProcessEnv = {}): MainOptions {
  const { tasksEmulatorListenHost: host, tasksEmulatorPort: port } = parseSettings('tasks-emulator', { argv, env });
  return { host, port };
}

async function main(): Promise<void> {
  const logger = createLogger('tasks-emulator');
  const options = parseMainOptions(process.argv.slice(2), process.env);
  const emulator = await startTasksEmulator({ ...options, logger });
  process.stdout.write(`CLOUD_TASKS_EMULATOR_HOST=${emulator.address}\n`);
  const stop = (signal: string) => {
    logger.info('stopping', { signal });
    emulator.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('failed to stop cleanly', { error });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
