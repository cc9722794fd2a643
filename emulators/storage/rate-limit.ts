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

  /** Throws 429 if bucket/name has no token left, without spending one. */
  check(bucket: string, name: string): void {
    if (this.available(bucket, name) < 1) throw objectRateLimited(bucket, name);
  }

  /** Spends one token for bucket/name or throws 429. */
  take(bucket: string, name: string): void {
    const tokens = this.available(bucket, name);
    this.buckets.set(`${bucket}/${name}`, { tokens: tokens < 1 ? tokens : tokens - 1, refilledAt: this.now() });
    if (tokens < 1) throw objectRateLimited(bucket, name);
  }

  private available(bucket: string, name: string): number {
    const now = this.now();
    const state = this.buckets.get(`${bucket}/${name}`);
    if (!state) return this.limit.burst;
    const refill = ((now - state.refilledAt) / 1000) * this.limit.writesPerSecond;
    return Math.min(this.limit.burst, state.tokens + refill);
  }

  clear(): void {
    this.buckets.clear();
  }
}
