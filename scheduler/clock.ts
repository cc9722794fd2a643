/**
 * The runner's simulated clock: it starts at `startAt` and runs `speedUp` times faster than
 * real time, so `simulated = startAt + realElapsed * speedUp`.
 *
 * Real time is read from a monotonic source (`performance.now()`), so a wall-clock change
 * never moves the simulated clock, and a machine that sleeps pauses it instead of making it
 * jump (no burst of slots on wake-up; at speedUp 1 it then lags the wall clock).
 */
export class SimulatedClock {
  readonly speedUp: number;
  private readonly startMs: number;
  private readonly realStart: number;

  constructor(
    options: { startAt?: Date; speedUp?: number } = {},
    private readonly realNow: () => number = () => performance.now(),
  ) {
    this.startMs = (options.startAt ?? new Date()).getTime();
    this.speedUp = options.speedUp ?? 1;
    this.realStart = realNow();
  }

  /** The simulated time the clock started at. */
  get startAt(): Date {
    return new Date(this.startMs);
  }

  /** Simulated milliseconds since the epoch (fractional). */
  nowMs(): number {
    return this.startMs + (this.realNow() - this.realStart) * this.speedUp;
  }

  now(): Date {
    return new Date(Math.floor(this.nowMs()));
  }

  /** Real milliseconds for a simulated duration. */
  toRealMs(simulatedMs: number): number {
    return simulatedMs / this.speedUp;
  }

  /** Whole real milliseconds until simulated time `atMs`, rounded up so a timer never wakes early; 0 once it has passed. */
  realDelayUntil(atMs: number): number {
    return Math.max(0, Math.ceil(this.toRealMs(atMs - this.nowMs())));
  }
}
