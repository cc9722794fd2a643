/**
 * Serializes writes per key and coalesces them: a task reads the latest in-memory state when it
 * starts, so callers that ask while one write is queued share it, and a write can never overtake
 * an older one for the same key (which would put stale state on disk).
 */
export class CoalescingWriter {
  private readonly slots = new Map<string, { tail: Promise<void>; queued?: Promise<void> }>();
  private readonly inFlight = new Set<Promise<void>>();

  /**
   * Resolves once state at least as new as the caller's change has been written. Tasks for one
   * key must be interchangeable (each writes whatever is newest): a coalesced caller's task is
   * not run, the queued one is.
   */
  write(key: string, task: () => Promise<void>): Promise<void> {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { tail: Promise.resolve() };
      this.slots.set(key, slot);
    }
    if (slot.queued) return slot.queued;

    const owner = slot;
    const run: Promise<void> = owner.tail
      .catch(() => undefined)
      .then(() => {
        // Started: from here on, a newer change needs a run of its own.
        owner.queued = undefined;
        return task();
      });
    owner.queued = run;
    owner.tail = run;
    this.inFlight.add(run);
    const settle = () => {
      this.inFlight.delete(run);
      if (this.slots.get(key) === owner && owner.tail === run) this.slots.delete(key);
    };
    run.then(settle, settle);
    return run;
  }

  /** Waits until every write asked for so far has finished (successfully or not). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}
