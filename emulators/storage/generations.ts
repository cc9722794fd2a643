/**
 * Object generations as the service makes them: microsecond timestamps, strictly increasing
 * across the whole emulator, so a rewrite of the same name always gets a larger number, even
 * within one millisecond and after a restart from a data directory.
 */
export class GenerationClock {
  private last = 0;

  next(): number {
    const nowMicros = Date.now() * 1000;
    this.last = Math.max(nowMicros, this.last + 1);
    return this.last;
  }

  /** Makes sure later generations exceed one loaded from disk. */
  observe(generation: number): void {
    if (generation > this.last) this.last = generation;
  }
}
