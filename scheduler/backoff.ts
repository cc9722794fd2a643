import type { JobSpec } from './jobs';

/**
 * Seconds to wait before retry number `retry` (1 = the retry after the first failed attempt),
 * as Cloud Scheduler's RetryConfig documents it: start at minBackoff, double `maxDoublings`
 * times, then grow linearly by the last doubled interval, never above maxBackoff. With min
 * 10 s, max 300 s and 3 doublings: 10, 20, 40, 80, 160, 240, 300, 300, ...
 */
export function retryDelaySeconds(
  config: Pick<JobSpec['retry'], 'minBackoffSeconds' | 'maxBackoffSeconds' | 'maxDoublings'>,
  retry: number,
): number {
  const { minBackoffSeconds, maxBackoffSeconds, maxDoublings } = config;
  const doublings = retry - 1;
  const delay =
    doublings <= maxDoublings
      ? minBackoffSeconds * 2 ** doublings
      : minBackoffSeconds * 2 ** maxDoublings * (doublings - maxDoublings + 1);
  return Math.min(maxBackoffSeconds, delay);
}
