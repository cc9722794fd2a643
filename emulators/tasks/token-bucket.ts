/**
 * The token bucket the service documents for RateLimits: it holds up to `capacity`
 * (maxBurstSize) tokens, refills continuously at `ratePerSecond` (maxDispatchesPerSecond),
 * and every dispatch takes one. Starts full.
 */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private ratePerSecond: number,
    private capacity: number,
    now = Date.now(),
  ) {
    this.tokens = capacity;
    this.refilledAt = now;
  }

  /** Takes a token and returns 0, or takes none and returns the milliseconds until one is available. */
  take(now = Date.now()): number {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond));
  }

  /** Applies new limits, keeping the tokens already earned (up to the new capacity). */
  reconfigure(ratePerSecond: number, capacity: number, now = Date.now()): void {
    this.refill(now);
    this.ratePerSecond = ratePerSecond;
    this.capacity = capacity;
    this.tokens = Math.min(this.tokens, capacity);
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.refilledAt);
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    this.refilledAt = now;
  }
}
