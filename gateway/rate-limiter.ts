import { LRUCache } from 'lru-cache';

/**
 * A token bucket per key (or per client address): `rate` tokens a second, holding at most
 * `rate` (at least 1), so a caller may burst up to one second's worth and then runs at its rate.
 * At most `maxBuckets` are kept (least recently used go first), so many distinct callers cost
 * bounded memory.
 */
export class RateLimiter {
  private readonly buckets: LRUCache<string, { tokens: number; at: number }>;

  constructor(
    private readonly now: () => number = () => performance.now(),
    maxBuckets = 100_000,
  ) {
    this.buckets = new LRUCache({ max: maxBuckets });
  }

  /** Takes a token: 0 when allowed, else the milliseconds until one is free. */
  take(keyId: string, rate: number): number {
    const capacity = Math.max(1, rate);
    const now = this.now();
    const bucket = this.buckets.get(keyId) ?? { tokens: capacity, at: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    this.buckets.set(keyId, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) / rate) * 1000);
  }

  /** Gives back a token taken for something that turned out not to count. */
  giveBack(keyId: string, rate: number): void {
    const bucket = this.buckets.get(keyId);
    if (bucket) bucket.tokens = Math.min(Math.max(1, rate), bucket.tokens + 1);
  }
}
