/** The jobs are topology: defined in shared/jobs.ts, re-exported here for the scheduler's users. */
export * from '../shared/jobs';
