/**
 * Runs the Cloud Tasks emulator until SIGINT/SIGTERM:
 *
 *   npx tsx emulators/tasks/main.ts [--host 127.0.0.1] [--port 8123]
 *
 * Settings: flag, then environment (CLOUD_TASKS_EMULATOR_LISTEN_HOST, CLOUD_TASKS_EMULATOR_PORT),
 * then default (127.0.0.1, a free port). Prints `CLOUD_TASKS_EMULATOR_HOST=host:port` once it listens.
 */
import { createLogger } from '../../shared/log';
import { startTasksEmulator } from './server';

export interface MainOptions {
  host: string;
  port: number;
}

/** Parses flags, then environment, then defaults; throws naming the setting that is wrong. */
export function parseMainOptions(argv: string[], env: NodeJS.ProcessEnv = {}): MainOptions {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.split('=', 2) as [string, string | undefined];
    if (flag !== '--host' && flag !== '--port') throw new Error(`unknown argument "${arg}" (expected --host or --port)`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    flags.set(flag, value);
  }
  const host = flags.get('--host') ?? env.CLOUD_TASKS_EMULATOR_LISTEN_HOST ?? '127.0.0.1';
  const portText = flags.get('--port') ?? env.CLOUD_TASKS_EMULATOR_PORT ?? '0';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new Error(`--port must be an integer in [0, 65535] (got "${portText}")`);
  if (host.trim() === '') throw new Error('--host must not be empty');
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
