/**
 * A token bucket per key: `rate` tokens a second, holding at most `rate` (at least 1), so a key
 * may burst up to one second's worth and then runs at its rate.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

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
}
