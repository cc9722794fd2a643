import { InvalidArgumentError, SpineError } from '../shared/errors';

/**
 * A job or runner setting the runner cannot work with, found when the runner starts. `job` is
 * the job's name (absent for runner options) and `field` the setting, e.g. `retry.retryCount`.
 */
export class SchedulerConfigError extends InvalidArgumentError {
  constructor(
    readonly job: string | undefined,
    readonly field: string,
    reason: string,
  ) {
    super(
      job === undefined
        ? `scheduler runner option ${field}: ${reason}`
        : `scheduler job ${JSON.stringify(job)}: ${field} ${reason}`,
    );
  }
}

/** `runNow` was asked for a job the runner does not have. */
export class UnknownJobError extends SpineError {
  constructor(
    readonly job: string,
    readonly known: readonly string[],
  ) {
    super(
      'NOT_FOUND',
      `scheduler job ${JSON.stringify(job)} is not one of the runner's jobs (${known.join(', ') || 'none'})`,
    );
  }
}

/** `runNow` was called after `stop()`. */
export class RunnerStoppedError extends Error {
  readonly code = 'RUNNER_STOPPED';

  constructor(what: string) {
    super(`${what} was called after the scheduler runner was stopped`);
    this.name = 'RunnerStoppedError';
  }
}
