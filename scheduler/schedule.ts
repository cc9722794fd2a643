import { CronExpressionParser, type CronExpression } from 'cron-parser';
import type { FunctionName } from '../shared/topology';
import { SchedulerConfigError } from './errors';
import type { JobSpec } from './jobs';

/** Cloud Scheduler's job id alphabet and length. */
const JOB_NAME = /^[A-Za-z0-9_-]{1,500}$/;
/** Cloud Scheduler's retry limit and the attempt deadline range it accepts for HTTP targets. */
const MAX_RETRY_COUNT = 5;
const MIN_ATTEMPT_DEADLINE_SECONDS = 15;
const MAX_ATTEMPT_DEADLINE_SECONDS = 30 * 60;

/** The cron slots of one job, in its time zone. */
export interface JobSchedule {
  /** The first slot at or after `at`. */
  firstSlotFrom(at: Date): Date;
  /** An iterator over the slots strictly after `after`. */
  slotsAfter(after: Date): CronExpression;
}

/**
 * Parses a job's unix-cron schedule. Cloud Scheduler takes exactly five fields (minute
 * granularity), while cron-parser also accepts a seconds field and macros, so those are refused
 * here rather than run locally and rejected by the deployment.
 */
export function parseSchedule(job: JobSpec): JobSchedule {
  const fields = job.schedule.trim().split(/\s+/);
  if (fields.length !== 5) {
    throw new SchedulerConfigError(
      job.name,
      'schedule',
      `must be unix-cron with 5 fields (minute hour day-of-month month day-of-week), got ${JSON.stringify(job.schedule)}`,
    );
  }
  if (!isTimeZone(job.timeZone))
    throw new SchedulerConfigError(job.name, 'timeZone', `is not an IANA time zone: ${JSON.stringify(job.timeZone)}`);
  const parse = (after: Date) => CronExpressionParser.parse(job.schedule, { currentDate: after, tz: job.timeZone });
  try {
    parse(new Date()).next();
  } catch (error) {
    throw new SchedulerConfigError(
      job.name,
      'schedule',
      `${JSON.stringify(job.schedule)} cannot be used: ${(error as Error).message}`,
    );
  }
  return {
    firstSlotFrom: (at) =>
      parse(new Date(at.getTime() - 1))
        .next()
        .toDate(),
    slotsAfter: parse,
  };
}

function isTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string' || timeZone.length === 0) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** Checks every job once, before anything fires; errors name the job and the setting. */
export function validateJobs(jobs: readonly JobSpec[], urls: Partial<Record<FunctionName, string>>): void {
  const seen = new Set<string>();
  for (const job of jobs) {
    if (typeof job.name !== 'string' || !JOB_NAME.test(job.name)) {
      throw new SchedulerConfigError(String(job.name), 'name', 'must be 1-500 letters, digits, hyphens or underscores');
    }
    if (seen.has(job.name)) throw new SchedulerConfigError(job.name, 'name', 'is used by more than one job');
    seen.add(job.name);

    const { retry } = job;
    const whole = (field: keyof JobSpec['retry'], value: number, min: number, max = Infinity) => {
      if (!Number.isInteger(value) || value < min || value > max) {
        throw new SchedulerConfigError(
          job.name,
          `retry.${field}`,
          `must be an integer in [${min}, ${max}], got ${value}`,
        );
      }
    };
    const seconds = (field: keyof JobSpec['retry'], value: number, min: number, max = Infinity) => {
      if (!Number.isFinite(value) || value < min || value > max) {
        throw new SchedulerConfigError(
          job.name,
          `retry.${field}`,
          `must be a number of seconds in [${min}, ${max}], got ${value}`,
        );
      }
    };
    whole('retryCount', retry.retryCount, 0, MAX_RETRY_COUNT);
    whole('maxDoublings', retry.maxDoublings, 0);
    seconds('minBackoffSeconds', retry.minBackoffSeconds, 0);
    seconds('maxBackoffSeconds', retry.maxBackoffSeconds, 0);
    if (retry.maxBackoffSeconds < retry.minBackoffSeconds) {
      throw new SchedulerConfigError(
        job.name,
        'retry.maxBackoffSeconds',
        `cannot be less than retry.minBackoffSeconds (${retry.maxBackoffSeconds} < ${retry.minBackoffSeconds})`,
      );
    }
    seconds(
      'attemptDeadlineSeconds',
      retry.attemptDeadlineSeconds,
      MIN_ATTEMPT_DEADLINE_SECONDS,
      MAX_ATTEMPT_DEADLINE_SECONDS,
    );

    const url = urls[job.target.function];
    if (!url)
      throw new SchedulerConfigError(
        job.name,
        'target.function',
        `is ${JSON.stringify(job.target.function)}, which has no URL in the runner's urls`,
      );
    if (!URL.canParse(url))
      throw new SchedulerConfigError(
        job.name,
        'target.function',
        `URL for ${JSON.stringify(job.target.function)} is not a URL: ${JSON.stringify(url)}`,
      );
    try {
      JSON.stringify(job.target.body);
    } catch (error) {
      throw new SchedulerConfigError(job.name, 'target.body', `is not JSON-serializable: ${(error as Error).message}`);
    }
    parseSchedule(job);
  }
}
