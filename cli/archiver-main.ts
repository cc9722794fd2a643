/**
 * Runs the local archiver in a process of its own (see cli/archiver.ts), configured by the
 * environment like the functions (emulator hosts, project, prefix, bucket) and
 * `--max-batch-ms <ms>`. Prints `ARCHIVER_READY` once pulling; on SIGINT/SIGTERM it writes what
 * it holds, acknowledges it and exits 0.
 */
import { createLogger } from '../shared/log';
import { createPubSubClient, createStorageClient, createSubscriberClient } from '../shared/mesh/clients';
import { loadSettings } from '../shared/settings';
import { defineTopology } from '../shared/topology';
import { Archiver, ensureArchiveSubscription, LOCAL_ARCHIVE_MAX_BATCH_MS } from './archiver';

const log = createLogger('archiver');

function maxBatchMsOf(argv: string[]): number {
  const at = argv.indexOf('--max-batch-ms');
  if (at < 0) return LOCAL_ARCHIVE_MAX_BATCH_MS;
  const value = Number(argv[at + 1]);
  if (!Number.isInteger(value) || value < 10 || value > 600_000)
    throw new Error(`--max-batch-ms must be an integer from 10 to 600000, got ${argv[at + 1]}`);
  return value;
}

async function main(): Promise<void> {
  const settings = loadSettings(process.env);
  const topology = defineTopology({
    projectId: settings.projectId,
    prefix: settings.topicPrefix,
    bucket: settings.bucket,
  });
  const pubsub = createPubSubClient(settings);
  const storage = createStorageClient(settings);
  const subscriptionPath = await ensureArchiveSubscription(topology, pubsub);
  await pubsub.close();
  const subscriber = createSubscriberClient(settings);
  const archiver = new Archiver({
    subscriber,
    storage,
    bucket: settings.bucket,
    layout: topology.archive,
    subscriptionPath,
    maxBatchMs: maxBatchMsOf(process.argv.slice(2)),
    logger: log,
  });
  archiver.start();
  process.stdout.write('ARCHIVER_READY\n');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping the archiver', { signal });
    await archiver.stop();
    await subscriber.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error) => {
  log.error('the archiver failed to start', { error });
  process.exit(1);
});
