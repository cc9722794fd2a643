/**
 * The official Pub/Sub emulator (Java, state in memory), found in the Cloud SDK and run as its own
 * process group:
 *
 *   const emulator = await startPubSubEmulator();
 *   const pubsub = new PubSub({ projectId: emulator.projectId, apiEndpoint: emulator.address });
 *   ...
 *   await emulator.stop();
 */
export {
  startPubSubEmulator,
  type PubSubEmulator,
  type PubSubEmulatorEnv,
  type PubSubEmulatorOptions,
} from './emulator';
export {
  EmulatorError,
  EmulatorNotInstalledError,
  EmulatorStartError,
  InvalidEmulatorSettingError,
  INSTALL_HINTS,
  type EmulatorErrorCode,
  type MissingComponent,
  type ProcessOutcome,
} from './errors';
export {
  findPubSubLauncher,
  commonSdkRoots,
  LAUNCHER_SETTING,
  LAUNCHER_IN_SDK,
  type LaunchPlan,
  type FindLauncherOptions,
} from './launcher';
export { findJava } from './java';
export { isGroupAlive } from './process-group';
export { DEFAULT_JAVA_HEAP, DEFAULT_PROJECT_ID } from './settings';
