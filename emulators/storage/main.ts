/**
 * Runs the storage emulator until SIGINT/SIGTERM:
 *
 *   npx tsx emulators/storage/main.ts --port 4443 --data-dir .data/storage
 *
 * Prints `STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT` (a line a shell can `export`) once it listens.
 */
import { createLogger } from '../../shared/log';
import { startStorageEmulator } from './index';
import { parseStorageEmulatorCommandLine } from './options';

async function main(): Promise<void> {
  const logger = createLogger('storage-emulator');
  const emulator = await startStorageEmulator({
    ...parseStorageEmulatorCommandLine(process.argv.slice(2), process.env),
    logger,
  });
  process.stdout.write(`STORAGE_EMULATOR_HOST=${emulator.url}\n`);

  const shutdown = (signal: NodeJS.Signals) => {
    logger.info('stopping on signal', { signal });
    emulator.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('stop failed', { error });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
