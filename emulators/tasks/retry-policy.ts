import type { QueueConfig } from './queue-config';

type RetryConfig = QueueConfig['retryConfig'];

/**
 * Delay before retry number `retry` (1 = the retry after the first failed attempt), as the
 * RetryConfig documentation describes it: start at minBackoff, double `maxDoublings` times,
 * then grow linearly by the last doubled interval, never above maxBackoff. With min 10s,
 * max 300s and 3 doublings: 10, 20, 40, 80, 160, 240, 300, 300, ...
 */
export function retryDelayMs(config: RetryConfig, retry: number): number {
  const { minBackoffMs, maxBackoffMs, maxDoublings } = config;
  const doublings = retry - 1;
  const delay =
    doublings <= maxDoublings
      ? minBackoffMs * 2 ** doublings
      : minBackoffMs * 2 ** maxDoublings * (doublings - maxDoublings + 1);
  return Math.min(maxBackoffMs, delay);
}

/**
 * Whether a task that has just failed its `attempts`-th attempt is to be given up (and
 * deleted). As documented, the service stops only once both limits are reached; an
 * unlimited limit counts as reached, unless both are unlimited (then it never stops).
 */
export function retriesExhausted(
  config: RetryConfig,
  attempts: number,
  firstAttemptAtMs: number,
  nowMs: number,
): boolean {
  const attemptsUnlimited = config.maxAttempts === -1;
  const durationUnlimited = config.maxRetryDurationMs === 0;
  if (attemptsUnlimited && durationUnlimited) return false;
  const attemptsReached = attemptsUnlimited || attempts >= config.maxAttempts;
  const durationReached = durationUnlimited || nowMs - firstAttemptAtMs >= config.maxRetryDurationMs;
  return attemptsReached && durationReached;
}
