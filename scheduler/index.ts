/** The scheduled jobs (defined once, deployed by Terraform) and the local runner that fires them. */
export * from './jobs';
export {
  startSchedulerRunner,
  formatScheduleTime,
  type SchedulerRunner,
  type SchedulerRunnerOptions,
  type FiredSlot,
  type AttemptRecord,
  type SlotStatus,
  type SlotEndReason,
} from './runner';
export { SimulatedClock } from './clock';
export { retryDelaySeconds } from './backoff';
export { parseSchedule, validateJobs, type JobSchedule } from './schedule';
export { SchedulerConfigError, UnknownJobError, RunnerStoppedError } from './errors';
