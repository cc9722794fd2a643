/** The gateway's process on Cloud Run: settings from the environment, stops on SIGTERM. */
import { createLogger } from '../shared/log';
import { startGatewayFromEnv } from './from-env';

async function main(): Promise<void> {
  const log = createLogger('gateway');
  const gateway = await startGatewayFromEnv(process.env, { logger: log });
  const stop = () => {
    gateway.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error('stopping failed', { error });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  createLogger('gateway').error('the gateway could not start', { error });
  process.exit(1);
});
