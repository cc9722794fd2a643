/**
 * Where the CLI finds the mesh: the same settings as the library (`loadSettings`), taken from
 * flags, then the environment, then `<data-dir>/mesh.env` (what `npm start` writes), then the
 * defaults. Local emulator hosts are probed with a short TCP connect first, so a mesh that is not
 * running is reported in a second or two instead of after a gRPC deadline.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { openBackend } from '../shared/backends/open-backend';
import { InvalidArgumentError } from '../shared/errors';
import type { Logger } from '../shared/log';
import type { Storage } from '@google-cloud/storage';
import { createLogger } from '../shared/log';
import type { NetworkStorage } from '../shared/model';
import type { SpineStorage } from '../shared/mesh/spine-storage';
import {
  parseSetting,
  parseSettings,
  SETTINGS,
  settingNames,
  spineSettings,
  splitHostPort,
  type SettingSpec,
  type SpineSettings,
} from '../shared/settings';
import { MeshUnreachableError, UsageError } from './errors';
import type { CommonFlags } from './options';

type Env = Record<string, string | undefined>;

export const DEFAULT_DATA_DIR = SETTINGS.dataDir.default;
export const MESH_ENV_FILE = 'mesh.env';
/** Long enough for a loaded machine, short enough that nobody waits on a mesh that is not there. */
export const PROBE_TIMEOUT_MS = 2_000;

export interface MeshConnection {
  /** The merged environment the settings were read from. */
  env: Env;
  settings: SpineSettings;
  /** The mesh.env that was read, when one was. */
  meshEnvFile?: string;
  /** Says where the settings came from, for error messages. */
  origin: string;
}

/** `KEY=value` lines; blank lines and `#` comments are skipped; the value is everything after the first `=`. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const equals = line.indexOf('=');
    if (equals <= 0) continue;
    env[line.slice(0, equals).trim()] = line.slice(equals + 1);
  }
  return env;
}

/** Merges mesh.env, the environment and the flags (in rising precedence) and reads the settings from them. */
export async function resolveConnection(flags: CommonFlags, processEnv: Env = process.env): Promise<MeshConnection> {
  const commandLine = { 'data-dir': flags.dataDir, project: flags.project, prefix: flags.prefix, bucket: flags.bucket };
  const dataDir = path.resolve(asUsageError(() => parseSetting('dataDir', { flags: commandLine, env: processEnv })));
  const meshEnvFile = path.join(dataDir, MESH_ENV_FILE);
  const fileEnv = existsSync(meshEnvFile) ? parseEnvFile(await readFile(meshEnvFile, 'utf8')) : undefined;
  const env: Env = { ...fileEnv };
  for (const [key, value] of Object.entries(processEnv)) if (value !== undefined) env[key] = value;
  // The flags go into the environment the mesh client is built from (SpineStorage.fromEnv).
  for (const name of settingNames('cli')) {
    const { flag, variable } = SETTINGS[name] as SettingSpec<unknown>;
    const value = flag ? commandLine[flag as keyof typeof commandLine] : undefined;
    if (value !== undefined) env[variable] = value;
  }

  const relative = path.relative(process.cwd(), meshEnvFile);
  const relativeFile = relative && !relative.startsWith('..') ? relative : meshEnvFile;
  const pointsAtMesh = env.PUBSUB_EMULATOR_HOST || env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT;
  if (!fileEnv && !pointsAtMesh) {
    throw new MeshUnreachableError(
      `no mesh to talk to: ${relativeFile} does not exist and PUBSUB_EMULATOR_HOST is not set; start the local mesh with \`npm start\` (or pass --data-dir)`,
    );
  }
  const settings = asUsageError(() => spineSettings(parseSettings('library', { flags: commandLine, env })));
  // On emulators there are no credentials to find: skip the metadata server probe (and its warning).
  if (settings.pubsubEmulatorHost || settings.storageEmulatorHost) process.env.METADATA_SERVER_DETECTION ??= 'none';
  const origin = fileEnv ? `settings from ${relativeFile} and the environment` : 'settings from the environment';
  return { env, settings, ...(fileEnv ? { meshEnvFile } : {}), origin };
}

/** A bad setting is a usage error (exit 2). */
function asUsageError<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new UsageError(error.message);
    throw error;
  }
}

export interface Endpoint {
  part: 'pubsub' | 'storage' | 'tasks' | 'function';
  /** What runs there, for the error message ("the Pub/Sub emulator"). */
  name: string;
  host: string;
  port: number;
}

/** The emulator endpoints of the settings (a deployment on Google Cloud has none). */
export function emulatorEndpoints(settings: SpineSettings, { tasks = false } = {}): Endpoint[] {
  const endpoints: Endpoint[] = [];
  if (settings.pubsubEmulatorHost)
    endpoints.push({ part: 'pubsub', name: 'the Pub/Sub emulator', ...splitHostPort(settings.pubsubEmulatorHost) });
  if (settings.storageEmulatorHost) {
    const url = new URL(settings.storageEmulatorHost);
    endpoints.push({
      part: 'storage',
      name: 'the Storage emulator',
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    });
  }
  if (tasks && settings.tasksEmulatorHost)
    endpoints.push({ part: 'tasks', name: 'the Tasks emulator', ...splitHostPort(settings.tasksEmulatorHost) });
  return endpoints;
}

export function urlEndpoint(name: string, url: string): Endpoint {
  const parsed = new URL(url);
  return {
    part: 'function',
    name,
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80)),
  };
}

/** Resolves when every endpoint accepts a TCP connection; rejects naming the first that does not. */
export async function probeEndpoints(
  endpoints: Endpoint[],
  origin: string,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<void> {
  const failures = await Promise.all(endpoints.map((endpoint) => probe(endpoint, timeoutMs)));
  const index = failures.findIndex((failure) => failure !== undefined);
  if (index === -1) return;
  const { name, host, port } = endpoints[index]!;
  throw new MeshUnreachableError(
    `cannot reach ${name} at ${host}:${port} (${failures[index]}; ${origin}): is the mesh running? Start it with \`npm start\``,
  );
}

function probe({ host, port }: Endpoint, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (failure: string | undefined) => {
      socket.destroy();
      resolve(failure);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}

/** Logs of the library go to stderr and only from WARNING up, so stdout carries nothing but output. */
export function cliLogger(): Logger {
  process.env.SPINE_LOG_LEVEL ??= 'WARNING';
  return createLogger('spine-cli');
}

/** A mesh client for the connection, after the emulators it uses answered the probe. */
export async function openSpine(connection: MeshConnection): Promise<SpineStorage> {
  await probeEndpoints(emulatorEndpoints(connection.settings), connection.origin);
  // Loaded here, not at the top: the Pub/Sub client is half of a command's start-up, and reads need none.
  const { SpineStorage } = require('../shared/mesh/spine-storage') as typeof import('../shared/mesh/spine-storage');
  return SpineStorage.fromEnv(connection.env, { writerId: 'spine-cli', logger: cliLogger() });
}

/** Opens a client, runs `work` with it and always closes it (its subscriptions are removed). */
export async function withSpine<T>(
  flags: CommonFlags,
  work: (spine: SpineStorage, connection: MeshConnection) => Promise<T>,
): Promise<T> {
  const connection = await resolveConnection(flags);
  const spine = await openSpine(connection);
  try {
    return await work(spine, connection);
  } finally {
    await spine.close();
  }
}

/** The Storage client alone: reading commands skip loading Pub/Sub's (about 0.5 s). */
export function storageClient(settings: SpineSettings): Storage {
  const { createStorageClient } =
    require('../shared/mesh/storage-client') as typeof import('../shared/mesh/storage-client');
  return createStorageClient(settings);
}

/**
 * Runs `work` with the materialized state alone, for commands that only read it: the store the
 * mesh client would read, without the Pub/Sub client. Stores other than Cloud Storage are built
 * by the mesh client itself (`SpineStorage.fromEnv`), which knows them all.
 */
export async function withState<T>(
  flags: CommonFlags,
  work: (state: NetworkStorage, connection: MeshConnection) => Promise<T>,
): Promise<T> {
  const connection = await resolveConnection(flags);
  const { settings } = connection;
  if (settings.stateStore !== 'gcs') return withSpine(flags, work);
  await probeEndpoints(
    emulatorEndpoints(settings).filter((e) => e.part === 'storage'),
    connection.origin,
  );
  const state = openBackend({
    type: 'gcs',
    bucket: settings.bucket,
    prefix: settings.statePrefix,
    storage: storageClient(settings),
    logger: cliLogger(),
  });
  try {
    return await work(state, connection);
  } finally {
    await state.close();
  }
}
