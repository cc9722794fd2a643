/** `spine dev` (what `npm start` runs): the whole mesh on this machine until Ctrl-C. */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger, type Logger, type Severity } from '../../shared/log';
import {
  parseSettings,
  readFlags,
  SettingError,
  SETTINGS,
  settingNames,
  type SettingSpec,
  type SettingsOf,
} from '../../shared/settings';
import { shownDefault } from '../../shared/settings/docs';
import { FUNCTION_TARGETS } from '../../functions/targets';
import type { FunctionName } from '../../shared/topology';
import { MESH_ENV_FILE } from '../connection';
import {
  MeshStartError,
  portParts,
  startLocalMesh,
  type LocalMesh,
  type MeshPorts,
  type StopReport,
} from '../local-mesh';
import { startDashboard, type Dashboard } from '../../dashboard/server';
import { startGatewayFromEnv } from '../../gateway/from-env';
import type { Gateway } from '../../gateway/server';
import { describeTakenPorts, isSpineDevCommand } from '../port-owner';
import { commandLine, isRunning } from '../processes';

const devFlags = settingNames('dev').flatMap((name) => {
  const setting = SETTINGS[name] as SettingSpec<unknown>;
  return setting.flag
    ? [{ setting, flag: `--${setting.flag}${setting.flagArgument ? ` ${setting.flagArgument}` : ''}` }]
    : [];
});
const flagWidth = Math.max(...devFlags.map(({ flag }) => flag.length));

/** From the settings table, so the flags, variables and defaults shown are the ones read. */
export const DEV_USAGE = [
  `usage: spine dev ${devFlags.map(({ flag }) => `[${flag}]`).join(' ')} [--verbose]`,
  '',
  '  dev   start the whole mesh locally (Pub/Sub emulator, Storage and Tasks emulators,',
  '        the functions, the scheduler, the topology) and keep it running until Ctrl-C',
  '',
  'options (flag, then environment variable, then default):',
  ...devFlags.map(
    ({ setting, flag }) =>
      `  ${flag.padEnd(flagWidth)}  ${setting.description} (${setting.variable}${shownDefault(setting) ? `, default ${shownDefault(setting)}` : ''})`,
  ),
  `  ${'--verbose'.padEnd(flagWidth)}  print every log line here too (they always go to <data-dir>/mesh.log)`,
  '',
  'environment only:',
  ...settingNames('dev').flatMap((name) => {
    const setting = SETTINGS[name] as SettingSpec<unknown>;
    return setting.flag ? [] : [`  ${setting.variable}  ${setting.description}`];
  }),
].join('\n');

/** The fixed port plan from one base number, so a second start finds the first one's ports taken. */
export function portPlan(base: number): MeshPorts & { dashboard: number; gateway: number } {
  if (base === 0) return { pubsub: 0, storage: 0, tasks: 0, dashboard: 0, gateway: 0, functions: {} };
  const functions: Partial<Record<FunctionName, number>> = {};
  FUNCTION_TARGETS.forEach((name, index) => (functions[name] = base + 4 + index));
  return {
    pubsub: base,
    storage: base + 1,
    tasks: base + 2,
    dashboard: base + 3,
    gateway: base + 4 + FUNCTION_TARGETS.length,
    functions,
  };
}

/** A `spine dev` already running on this data dir, from its pid file (Linux: read from /proc). */
async function runningMesh(pidFile: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  // A stale file, or its pid reused by another program, is no running mesh.
  return (await isRunning(pid)) && isSpineDevCommand(await commandLine(pid)) ? pid : undefined;
}

/** What `spine dev` was asked to do: run with these settings, or exit now (help shown, or a bad setting named). */
type DevRequest = { settings: SettingsOf<'dev'>; verbose: boolean } | { exitCode: number };

/** Flags, then environment, then defaults; `--help` and a bad setting are answered here, before anything starts. */
export function readDevRequest(argv: string[], env: NodeJS.ProcessEnv): DevRequest {
  try {
    const flags = readFlags('dev', argv, { verbose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
    if (flags.help) {
      console.log(DEV_USAGE);
      return { exitCode: 0 };
    }
    return { settings: parseSettings('dev', { flags, env }), verbose: flags.verbose === true };
  } catch (error) {
    if (!(error instanceof SettingError)) throw error;
    console.error(`spine dev: ${error.message}\n\n${DEV_USAGE}`);
    return { exitCode: 2 };
  }
}

/** `<data-dir>/mesh.log`: every line of the mesh and its functions, echoed to the terminal with `--verbose`. */
interface MeshLog {
  file: string;
  log: Logger;
  /** A line the functions process printed (already JSON). */
  writeFunctionsLine(line: string): void;
  close(): Promise<void>;
}

function openMeshLog(dataDir: string, verbose: boolean): MeshLog {
  const file = path.join(dataDir, 'mesh.log');
  const stream = createWriteStream(file, { flags: 'a' });
  const toTerminal = (line: string, severity: Severity) => {
    if (verbose) (severity === 'ERROR' || severity === 'WARNING' ? process.stderr : process.stdout).write(line + '\n');
  };
  const log = createLogger('spine-dev', {}, (line, severity) => {
    stream.write(line + '\n');
    toTerminal(line, severity);
  });
  return {
    file,
    log,
    writeFunctionsLine: (line) => {
      stream.write(line + '\n');
      toTerminal(line, /"severity":"(ERROR|WARNING)"/.test(line) ? 'ERROR' : 'INFO');
    },
    close: () => new Promise<void>((resolve) => stream.end(resolve)),
  };
}

/** The first SIGINT or SIGTERM, listened for from the start so one that arrives while starting stops the start-up too. */
function watchStopSignals(): { readonly requested: boolean; received: Promise<void> } {
  let requested = false;
  const received = new Promise<void>((resolve) => {
    const onSignal = () => {
      requested = true;
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  return {
    get requested() {
      return requested;
    },
    received,
  };
}

interface DevParts {
  mesh: LocalMesh;
  dashboard: Dashboard;
  gateway: Gateway;
}

/** The mesh, then the dashboard, then the gateway; a part that fails to start stops those before it (MeshStartError names it). */
async function startParts(
  settings: SettingsOf<'dev'>,
  dataDir: string,
  ports: ReturnType<typeof portPlan>,
  meshLog: MeshLog,
): Promise<DevParts> {
  const { log } = meshLog;
  const { postgresUrl, dashboardToken } = settings;
  const mesh = await startLocalMesh({
    dataDir,
    projectId: settings.projectId,
    topicPrefix: settings.topicPrefix,
    ports,
    ...(postgresUrl ? { postgresUrl } : {}),
    functionsEnv: functionSettings(process.env),
    // Every contact write into the archive, for `spine history`.
    archiver: true,
    logger: log,
    onFunctionsLog: meshLog.writeFunctionsLine,
  });
  const dashboard = await startDashboard({
    env: mesh.env,
    port: ports.dashboard,
    ...(dashboardToken ? { token: dashboardToken } : {}),
    logger: log.child({ part: 'dashboard' }),
    supervision: () => mesh.supervision(),
  }).catch(async (error: unknown) => {
    await mesh.stop({ drain: false });
    throw new MeshStartError('dashboard', (error as Error).message, { cause: error });
  });
  const gateway = await startGatewayFromEnv(mesh.env, {
    port: ports.gateway,
    logger: log.child({ part: 'gateway' }),
  }).catch(async (error: unknown) => {
    await dashboard.stop();
    await mesh.stop({ drain: false });
    throw new MeshStartError('gateway', (error as Error).message, { cause: error });
  });
  return { mesh, dashboard, gateway };
}

/** `<data-dir>/mesh.env`, which `spine` reads: the mesh's environment and the gateway's URL. */
async function writeClientEnv(dataDir: string, { mesh, gateway }: DevParts): Promise<ClientEnv> {
  const file = path.join(dataDir, MESH_ENV_FILE);
  // Clients without Google credentials need only the gateway's URL and a key (spine keys create).
  const values: Record<string, string> = { ...mesh.env, SPINE_GATEWAY_URL: gateway.url };
  await writeFile(
    file,
    Object.entries(values)
      .map(([key, value]) => `${key}=${value}`)
      .join('\n') + '\n',
  );
  return { file, values };
}

interface ClientEnv {
  file: string;
  values: Record<string, string>;
}

/** The banner: how long start-up took, where every part listens, and the client environment. */
function printReady(
  { mesh, dashboard, gateway }: DevParts,
  dataDir: string,
  logFile: string,
  clientEnv: ClientEnv,
  seconds: string,
): void {
  const rows: Array<[string, string]> = [
    ['Pub/Sub emulator', mesh.env.PUBSUB_EMULATOR_HOST ?? ''],
    ['Storage emulator', mesh.env.STORAGE_EMULATOR_HOST ?? ''],
    ['Tasks emulator', mesh.env.CLOUD_TASKS_EMULATOR_HOST ?? ''],
    ...Object.entries(mesh.functions.urls).map(([name, url]) => [`function ${name}`, url!] as [string, string]),
    ['dashboard', dashboard.url],
    ['gateway', `${gateway.url} (RemoteStorage; keys: spine keys create)`],
    [
      'scheduler',
      mesh.scheduler
        ? `${mesh.topology.jobs.length} jobs (${mesh.topology.jobs.map((job) => job.name).join(', ')})`
        : 'off',
    ],
    [
      'state',
      mesh.settings.stateStore === 'postgres' ? 'PostgreSQL (SPINE_POSTGRES_URL)' : path.join(dataDir, 'storage'),
    ],
    ['logs', logFile],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`\nSuper Spine mesh ready in ${seconds} s — dashboard at ${dashboard.url}`);
  console.log(
    `  (project ${mesh.settings.projectId}, prefix ${mesh.settings.topicPrefix}, bucket ${mesh.settings.bucket}, state in ${mesh.settings.stateStore})\n`,
  );
  for (const [name, where] of rows) console.log(`  ${name.padEnd(width)}  ${where}`);
  console.log(
    `\nClient environment (also in ${path.relative(process.cwd(), clientEnv.file) || clientEnv.file}; \`spine\` reads it):\n`,
  );
  for (const [key, value] of Object.entries(clientEnv.values)) console.log(`  ${key}=${value}`);
  console.log('\nCtrl-C stops everything.');
}

/** The gateway, the dashboard, then the mesh, which first delivers what is in flight. */
async function stopParts({ mesh, dashboard, gateway }: DevParts, log: Logger): Promise<StopReport> {
  const stopAskedAt = Date.now();
  // npm relays the terminal's SIGINT, so one Ctrl-C can arrive twice: only a later one is a second press.
  const patience = () => {
    if (Date.now() - stopAskedAt > 1000)
      console.error('still stopping (delivering in-flight messages); the parts stop on their own shortly');
  };
  process.on('SIGINT', patience);
  process.on('SIGTERM', patience);
  console.log('\nstopping: delivering what is in flight, then stopping every part…');
  log.info('stopping the mesh');
  await gateway.stop().catch((error: unknown) => log.warn('the gateway did not stop cleanly', { error }));
  await dashboard.stop().catch((error: unknown) => log.warn('the dashboard did not stop cleanly', { error }));
  return mesh.stop({ drain: true });
}

function printStopReport(report: StopReport, logFile: string): void {
  if (report.drainError || report.undelivered > 0) {
    console.error(
      `warning: ${report.drainError ? `draining failed (${report.drainError})` : `${report.undelivered} in-flight messages could not be delivered`}; see ${logFile}`,
    );
  } else if (report.delivered > 0) {
    console.log(`delivered ${report.delivered} in-flight messages`);
  }
  console.log('stopped.');
}

/** Runs until stopped; resolves to the exit code. */
export async function dev(argv: string[]): Promise<number> {
  const request = readDevRequest(argv, process.env);
  if ('exitCode' in request) return request.exitCode;
  const { settings, verbose } = request;
  // Everything runs on emulators: no metadata server to probe for credentials.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  const dataDir = path.resolve(settings.dataDir);
  await mkdir(dataDir, { recursive: true });
  const pidFile = path.join(dataDir, 'spine-dev.pid');
  const other = await runningMesh(pidFile);
  if (other) {
    console.error(
      `spine dev: a Super Spine mesh (pid ${other}) is already running on ${dataDir}; stop it with Ctrl-C in its terminal or \`kill ${other}\``,
    );
    return 1;
  }

  const meshLog = openMeshLog(dataDir, verbose);
  const ports = portPlan(settings.portBase);
  const stop = watchStopSignals();

  // Every port at once, so one line says all that is taken (the mesh checks its own again).
  const taken = await describeTakenPorts([
    ...portParts(ports),
    { part: 'dashboard', port: ports.dashboard },
    { part: 'gateway', port: ports.gateway },
  ]);
  if (taken.length > 0) {
    console.error(`spine dev: could not start the mesh: ports: ${taken.join('; ')}`);
    return 1;
  }

  let parts: DevParts;
  try {
    parts = await startParts(settings, dataDir, ports, meshLog);
  } catch (error) {
    const part = error instanceof MeshStartError ? error.part : 'mesh';
    console.error(
      `spine dev: could not start the mesh: ${part}: ${oneLine((error as Error).message)} (details in ${path.relative(process.cwd(), meshLog.file) || meshLog.file})`,
    );
    meshLog.log.error('start failed', { error });
    await meshLog.close();
    return 1;
  }
  await writeFile(pidFile, `${process.pid}\n`);
  const seconds = (performance.now() / 1000).toFixed(1);
  printReady(parts, dataDir, meshLog.file, await writeClientEnv(dataDir, parts), seconds);

  if (!stop.requested) await stop.received;
  const report = await stopParts(parts, meshLog.log);
  await rm(pidFile, { force: true });
  printStopReport(report, meshLog.file);
  await meshLog.close();
  return 0;
}

/** The first line of a message, without the stack traces that child processes print. */
function oneLine(message: string): string {
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.length <= 1 ? (lines[0] ?? message) : `${lines[0]} … ${lines.at(-1)}`;
}

/** The functions' own settings given to `spine dev` in its environment (persistence mode, health thresholds…). */
function functionSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  const passed =
    /^SPINE_(PERSIST_ON|PERSIST_OVERRIDES|BATCH_WINDOW_MS|INTERVAL_MS|MAX_SNAPSHOTS|HEALTH_[A-Z_]+|LOG_LEVEL)$/;
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => passed.test(entry[0]) && entry[1] !== undefined),
  );
}
