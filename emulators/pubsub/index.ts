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
  type EmulatorErrorCode,
  type MissingComponent,
  type ProcessOutcome,
} from './errors';
export { LAUNCHER_SETTING } from './launcher';
export { DEFAULT_JAVA_HEAP, DEFAULT_PROJECT_ID } from './settings';
