/**
 * The cron schedule that runs something every `minutes` minutes, as Cloud Scheduler (one-minute
 * granularity) can: a whole number of minutes dividing an hour, or of hours dividing a day.
 * `undefined` for any other interval. The settings refuse such an interval with it, and the
 * scheduled jobs are built with it.
 */
export function everyMinutesCron(minutes: number): string | undefined {
  if (!Number.isInteger(minutes) || minutes < 1) return undefined;
  if (minutes === 1) return '* * * * *';
  if (minutes < 60 && 60 % minutes === 0) return `*/${minutes} * * * *`;
  if (minutes % 60 === 0 && 24 % (minutes / 60) === 0) return `0 */${minutes / 60} * * *`;
  return undefined;
}
