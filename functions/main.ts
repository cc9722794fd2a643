/**
 * Runs the mesh's functions in one process, configured by the environment (see shared/settings.ts).
 * Prints one line `FUNCTIONS_READY {"materialize":"http://…",…}` when serving; stops on SIGINT/SIGTERM
 * after in-flight requests finish.
 */
import { createLogger } from '../shared/log';
import { parseSettings } from '../shared/settings';
import { startFunctionsHost } from './host';
import { closeRuntime } from './runtime';

const log = createLogger('functions-host');

async function main(): Promise<void> {
  const host = await startFunctionsHost({ ports: parseSettings('functions', { env: process.env }).functionPorts });
  process.stdout.write(`FUNCTIONS_READY ${JSON.stringify(host.urls)}\n`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping functions', { signal });
    await host.stop();
    await closeRuntime();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error) => {
  log.error('functions failed to start', { error });
  process.exit(1);
});
