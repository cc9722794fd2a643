/**
 * Cloud Tasks emulator: a gRPC server for google.cloud.tasks.v2.CloudTasks that the official
 * `CloudTasksClient` reaches unchanged, and that dispatches HTTP tasks as real requests
 * with the service's headers, rate limits, concurrency limits and retry policy.
 *
 *   const emulator = await startTasksEmulator();
 *   const client = new CloudTasksClient(emulator.clientOptions());
 *
 * Served: every v2 CloudTasks method (IAM ones keep a policy per queue and grant every
 * permission). Not served: App Engine targets (UNIMPLEMENTED), the Locations mixin
 * (`getLocation`, `listLocations`) and the v2beta2/v2beta3 services. See README.md.
 */
export { startTasksEmulator } from './server';
export type { CloudTasksClientOptions, TasksEmulator, TasksEmulatorOptions } from './server';
export type { TasksEmulatorStats, TotalStats as TasksTotalStats } from './registry';
export type { QueueStats as TasksQueueStats } from './queue';
export { TasksEmulatorError } from './errors';
export { decodeIdTokenClaims } from './oidc';
