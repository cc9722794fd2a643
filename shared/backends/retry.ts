import { setTimeout as delay } from 'node:timers/promises';
import { InvalidArgumentError } from '../errors';

/** How often and how patiently a remote operation is retried. */
export interface RetryOptions {
  /** Tries in all, the first included (default 10). */
  maxAttempts?: number;
  /** Ceiling of the first wait; each further wait's ceiling doubles (default 50 ms). */
  baseDelayMs?: number;
  /** Largest ceiling a wait can reach (default 5 s). */
  maxDelayMs?: number;
}

export type RetryPolicy = Required<RetryOptions>;

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 10, baseDelayMs: 50, maxDelayMs: 5_000 };

/** Validates retry settings once, as they enter; `setting` names them in errors (e.g. "retry"). */
export function resolveRetryPolicy(input: RetryOptions | undefined, setting = 'retry'): RetryPolicy {
  if (input !== undefined && (typeof input !== 'object' || input === null)) {
    throw new InvalidArgumentError(`${setting} must be an object with maxAttempts, baseDelayMs and maxDelayMs`);
  }
  const policy = { ...DEFAULT_RETRY_POLICY, ...stripUndefined(input ?? {}) };
  if (!Number.isSafeInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new InvalidArgumentError(
      `${setting}.maxAttempts must be an integer of at least 1, not ${String(policy.maxAttempts)}`,
    );
  }
  if (!Number.isFinite(policy.baseDelayMs) || policy.baseDelayMs < 0) {
    throw new InvalidArgumentError(
      `${setting}.baseDelayMs must be a non-negative number, not ${String(policy.baseDelayMs)}`,
    );
  }
  if (!Number.isFinite(policy.maxDelayMs) || policy.maxDelayMs < policy.baseDelayMs) {
    throw new InvalidArgumentError(
      `${setting}.maxDelayMs cannot be less than ${setting}.baseDelayMs (${policy.maxDelayMs} < ${policy.baseDelayMs})`,
    );
  }
  return policy;
}

/**
 * The wait before retry number `retry` (1 for the first retry): "full jitter", a uniform pick
 * below an exponentially growing ceiling, so writers that collided once spread out instead of
 * colliding again in lockstep.
 */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

export interface RetryControl {
  policy: RetryPolicy;
  /** True when the error is worth another try. */
  retryable(error: unknown): boolean;
  /** Called before each wait, e.g. to count or log retries. */
  onRetry?(error: unknown, retry: number, delayMs: number): void;
  sleep?(ms: number): Promise<void>;
  random?(): number;
}

/**
 * Runs `operation` until it succeeds, fails with an error `retryable` refuses, or
 * `policy.maxAttempts` tries have failed; then rethrows the last error for the caller to wrap.
 */
export async function withRetry<T>(operation: (attempt: number) => Promise<T>, control: RetryControl): Promise<T> {
  const sleep = control.sleep ?? ((ms: number) => delay(ms));
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (!control.retryable(error) || attempt >= control.policy.maxAttempts) throw error;
      const wait = backoffDelay(control.policy, attempt, control.random);
      control.onRetry?.(error, attempt, wait);
      await sleep(wait);
    }
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
