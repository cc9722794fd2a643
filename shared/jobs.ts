import type { FunctionName } from './function-names';
import { everyMinutesCron } from './interval-schedule';

/**
 * The scheduled jobs, defined once: the Terraform deployment creates Cloud Scheduler jobs from
 * these, and the local runner fires them on the same schedules against the emulators.
 */
export interface JobSpec {
  name: string;
  description: string;
  /** Unix cron, Cloud Scheduler's syntax; one-minute granularity. */
  schedule: string;
  timeZone: string;
  /** An HTTP function of the mesh, called with OIDC in the cloud. */
  target: { function: FunctionName; method: 'POST'; body: Record<string, unknown> };
  retry: {
    retryCount: number;
    minBackoffSeconds: number;
    maxBackoffSeconds: number;
    maxDoublings: number;
    attemptDeadlineSeconds: number;
  };
}

export interface JobOptions {
  /** How often the interval flush runs; whole minutes (Cloud Scheduler's granularity), default 1. */
  persistIntervalMinutes?: number;
}

function everyMinutes(minutes: number): string {
  const cron = everyMinutesCron(minutes);
  if (cron) return cron;
  throw new Error(
    `an interval of ${minutes} minutes cannot be a cron schedule; use a divisor of 60 minutes or of 24 hours`,
  );
}

export function defineJobs(prefix: string, options: JobOptions = {}): JobSpec[] {
  return [
    {
      name: `${prefix}snapshots`,
      description: 'Snapshot every network changed since its last snapshot, then apply retention.',
      schedule: '0 * * * *',
      timeZone: 'Etc/UTC',
      target: { function: 'snapshot', method: 'POST', body: { networks: 'changed' } },
      retry: {
        retryCount: 3,
        minBackoffSeconds: 30,
        maxBackoffSeconds: 600,
        maxDoublings: 3,
        attemptDeadlineSeconds: 540,
      },
    },
    {
      name: `${prefix}persist-interval`,
      description: 'Flush every pending batched write (networks whose persistence is `interval`).',
      schedule: everyMinutes(options.persistIntervalMinutes ?? 1),
      timeZone: 'Etc/UTC',
      // Booked as a task in the persist queue, so it runs one at a time with the window flushes.
      target: { function: 'persist', method: 'POST', body: { all: true, enqueue: true } },
      retry: {
        retryCount: 2,
        minBackoffSeconds: 5,
        maxBackoffSeconds: 60,
        maxDoublings: 2,
        attemptDeadlineSeconds: 300,
      },
    },
    {
      name: `${prefix}health`,
      description: 'Canary write end to end, dead letters, pending batches, snapshot ages, agent liveness.',
      schedule: '*/5 * * * *',
      timeZone: 'Etc/UTC',
      target: { function: 'health', method: 'POST', body: {} },
      retry: {
        retryCount: 1,
        minBackoffSeconds: 10,
        maxBackoffSeconds: 60,
        maxDoublings: 1,
        attemptDeadlineSeconds: 120,
      },
    },
  ];
}
