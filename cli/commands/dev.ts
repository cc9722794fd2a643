/** `spine dev` (what `npm start` runs): the whole mesh on this machine until Ctrl-C. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../../shared/log';
import { startLocalMesh } from '../local-mesh';

export const DEV_USAGE = `usage: spine dev [--data-dir DIR] [--project ID] [--prefix PREFIX]

  dev   start the whole mesh locally (Pub/Sub emulator, Storage and Tasks emulators,
        the functions, the topology) and keep it running until Ctrl-C

options (flag, then environment variable, then default):
  --data-dir   SPINE_DATA_DIR        .spine     where state and mesh.env are kept
  --project    GOOGLE_CLOUD_PROJECT  spine-local
  --prefix     SPINE_TOPIC_PREFIX    spine-`;

export async function dev(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { 'data-dir': { type: 'string' }, project: { type: 'string' }, prefix: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    console.log(DEV_USAGE);
    return;
  }
  // Everything runs on emulators: no metadata server to probe for credentials.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  const dataDir = path.resolve(values['data-dir'] ?? process.env.SPINE_DATA_DIR ?? '.spine');
  const log = createLogger('spine-dev');
  const started = performance.now();
  const mesh = await startLocalMesh({
    dataDir,
    projectId: values.project ?? process.env.GOOGLE_CLOUD_PROJECT,
    topicPrefix: values.prefix ?? process.env.SPINE_TOPIC_PREFIX,
    logger: log,
    onFunctionsLog: (line) => process.stderr.write(line + '\n'),
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  await mkdir(dataDir, { recursive: true });
  const envFile = path.join(dataDir, 'mesh.env');
  await writeFile(envFile, Object.entries(mesh.env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');

  const rows: Array<[string, string]> = [
    ['Pub/Sub emulator', mesh.env.PUBSUB_EMULATOR_HOST ?? ''],
    ['Storage emulator', mesh.env.STORAGE_EMULATOR_HOST ?? ''],
    ['Tasks emulator', mesh.env.CLOUD_TASKS_EMULATOR_HOST ?? ''],
    ...Object.entries(mesh.functions.urls).map(([name, url]) => [`function ${name}`, url!] as [string, string]),
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`\nSuper Spine mesh ready in ${seconds} s (project ${mesh.settings.projectId}, prefix ${mesh.settings.topicPrefix}, bucket ${mesh.settings.bucket})\n`);
  for (const [name, where] of rows) console.log(`  ${name.padEnd(width)}  ${where}`);
  console.log(`\nClient environment (also in ${path.relative(process.cwd(), envFile) || envFile}):\n`);
  for (const [key, value] of Object.entries(mesh.env)) console.log(`  ${key}=${value}`);
  console.log('\nCtrl-C stops everything.');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log.info('stopping the mesh');
  await mesh.stop();
}
