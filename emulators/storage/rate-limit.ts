import { objectRateLimited } from './errors';

export interface ObjectRateLimit {
  /** Sustained mutations per second per object name (the service: about 1). */
  writesPerSecond: number;
  /** Mutations allowed back to back before the limit applies. */
  burst: number;
}

export const SERVICE_OBJECT_RATE_LIMIT: ObjectRateLimit = { writesPerSecond: 1, burst: 1 };

/**
 * Simulates the service's limit on mutations of one object name (429 rateLimitExceeded),
 * as a token bucket per name. Off unless the emulator is started with `objectRateLimit`.
 */
export class ObjectRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; refilledAt: number }>();

  constructor(
    private readonly limit: ObjectRateLimit,
    private readonly now: () => number = Date.now,
  ) {}

  /** Spends one token for bucket/name or throws 429. */
  take(bucket: string, name: string): void {
    const key = `${bucket}/${name}`;
    const now = this.now();
    const state = this.buckets.get(key) ?? { tokens: this.limit.burst, refilledAt: now };
    const refilled = Math.min(this.limit.burst, state.tokens + ((now - state.refilledAt) / 1000) * this.limit.writesPerSecond);
    if (refilled < 1) {
      this.buckets.set(key, { tokens: refilled, refilledAt: now });
      throw objectRateLimited(bucket, name);
    }
    this.buckets.set(key, { tokens: refilled - 1, refilledAt: now });
  }

  clear(): void {
    this.buckets.clear();
  }
}
