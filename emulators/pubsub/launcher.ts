import { execFile } from 'node:child_process';
import { realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseSetting, SETTINGS } from '../../shared/settings';
import { EmulatorNotInstalledError } from './errors';
import { findOnPath, isExecutableFile } from './executables';

const execFileAsync = promisify(execFile);

/** Setting (environment variable) naming the emulator launcher explicitly. */
export const LAUNCHER_SETTING = SETTINGS.pubsubEmulatorLauncher.variable;

/**
 * Where the launcher lives inside a Cloud SDK install.
 * @internal Used by the emulator's own start-up; exported for its tests.
 */
export const LAUNCHER_IN_SDK = path.join('platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');

/**
 * Install folders of the Cloud SDK worth a look when `gcloud` cannot tell us.
 * @internal Used by the emulator's own start-up; exported for its tests.
 */
export function commonSdkRoots(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME ?? os.homedir();
  return [
    '/usr/lib/google-cloud-sdk',
    '/usr/share/google-cloud-sdk',
    '/google-cloud-sdk',
    path.join(home, 'google-cloud-sdk'),
    '/opt/google-cloud-sdk',
    '/opt/homebrew/share/google-cloud-sdk',
    '/usr/local/share/google-cloud-sdk',
  ];
}

/**
 * How to start the emulator: its launcher script run directly (starts in well under a second),
 * or, as a last resort, through `gcloud beta emulators pubsub start` (a Python process in front).
 * @internal Used by the emulator's own start-up; exported for its tests.
 */
export type LaunchPlan =
  | { via: 'launcher'; command: string; source: 'option' | 'setting' | 'gcloud-sdk-root' | 'common-path' }
  | { via: 'gcloud'; command: string; source: 'gcloud' };

/** @internal Used by the emulator's own start-up; exported for its tests. */
export interface FindLauncherOptions {
  /** Explicit launcher path; wins over everything else. */
  launcher?: string;
  env?: NodeJS.ProcessEnv;
  /** Folders searched after the one `gcloud info` reports; defaults to {@link commonSdkRoots}. */
  sdkRoots?: readonly string[];
}

/**
 * Finds the Pub/Sub emulator: the `launcher` option or SPINE_PUBSUB_EMULATOR, then the Cloud SDK
 * that `gcloud` on the PATH belongs to, then common install folders, then `gcloud` itself.
 * An explicit launcher that is not executable fails rather than falling through, so a typo is
 * reported instead of silently starting some other emulator.
 * @internal Used by the emulator's own start-up; exported for its tests.
 */
export async function findPubSubLauncher(options: FindLauncherOptions = {}): Promise<LaunchPlan> {
  const env = options.env ?? process.env;
  const fromSetting = parseSetting('pubsubEmulatorLauncher', { env });

  const explicit = options.launcher
    ? { path: options.launcher, source: 'option' as const, name: 'the launcher option' }
    : fromSetting
      ? { path: fromSetting, source: 'setting' as const, name: LAUNCHER_SETTING }
      : undefined;
  if (explicit) {
    if (isExecutableFile(explicit.path)) return { via: 'launcher', command: explicit.path, source: explicit.source };
    throw new EmulatorNotInstalledError(
      'pubsub-emulator',
      `${explicit.name} points to ${explicit.path}, which is not an executable file`,
    );
  }

  const gcloud = findOnPath('gcloud', env);
  if (gcloud) {
    const launcher = launcherNextTo(gcloud) ?? inSdk(await sdkRootOf(gcloud, env));
    if (launcher) return { via: 'launcher', command: launcher, source: 'gcloud-sdk-root' };
  }

  for (const root of options.sdkRoots ?? commonSdkRoots(env)) {
    const launcher = inSdk(root);
    if (launcher) return { via: 'launcher', command: launcher, source: 'common-path' };
  }

  if (gcloud) return { via: 'gcloud', command: gcloud, source: 'gcloud' };

  throw new EmulatorNotInstalledError(
    'pubsub-emulator',
    `no Pub/Sub emulator launcher found (looked for ${LAUNCHER_SETTING}, gcloud on the PATH and ${LAUNCHER_IN_SDK} under the usual Cloud SDK folders)`,
  );
}

/** The command line that starts the emulator on host:port. */
export function launchArgs(plan: LaunchPlan, host: string, port: number, projectId: string): string[] {
  return plan.via === 'launcher'
    ? [`--host=${host}`, `--port=${port}`]
    : ['beta', 'emulators', 'pubsub', 'start', `--host-port=${host}:${port}`, `--project=${projectId}`];
}

/** The launcher inside the SDK folder `root`, if it is installed there. */
function inSdk(root: string | undefined): string | undefined {
  const launcher = root && path.join(root, LAUNCHER_IN_SDK);
  return launcher && isExecutableFile(launcher) ? launcher : undefined;
}

/**
 * The launcher of the SDK whose `bin/` holds the real `gcloud` (after symlinks): the same folder
 * `gcloud info` reports for a normal install, found without starting Python.
 */
function launcherNextTo(gcloud: string): string | undefined {
  try {
    return inSdk(path.dirname(path.dirname(realpathSync(gcloud))));
  } catch {
    return undefined;
  }
}

// `gcloud info` costs about half a second of Python start-up, so each gcloud is asked once per process.
const sdkRootCache = new Map<string, Promise<string | undefined>>();

function sdkRootOf(gcloud: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  let root = sdkRootCache.get(gcloud);
  if (!root) {
    root = execFileAsync(gcloud, ['info', '--format=value(installation.sdk_root)'], {
      env: { ...env, CLOUDSDK_CORE_DISABLE_PROMPTS: '1' },
      timeout: 15_000,
    }).then(
      ({ stdout }) => stdout.trim() || undefined,
      () => undefined,
    );
    sdkRootCache.set(gcloud, root);
  }
  return root;
}
