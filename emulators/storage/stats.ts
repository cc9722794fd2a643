import type { ObjectWriteKind } from './state';

/** Counts of what the emulator did, for tests that must bound state writes (e.g. one write per group per window). */
export interface StorageEmulatorStats {
  /** HTTP requests answered. */
  requests: number;
  /** Committed object mutations of every kind. */
  objectWrites: number;
  /** Committed object mutations by kind (insert, patch, delete, copy, compose, move). */
  writesByKind: Partial<Record<ObjectWriteKind, number>>;
  /** Committed object mutations per bucket. */
  writesByBucket: Record<string, number>;
  /** Committed object mutations per object, keyed `bucket/name`. */
  writesByObject: Record<string, number>;
  /** Requests refused with 412 conditionNotMet or 304. */
  preconditionFailures: number;
  /** Requests refused with 429 by the simulated per-object rate limit. */
  rateLimited: number;
  /** Object downloads (alt=media) served. */
  downloads: number;
}

export class StatsRecorder {
  private stats = emptyStats();

  request(): void {
    this.stats.requests++;
  }

  download(): void {
    this.stats.downloads++;
  }

  objectWrite(kind: ObjectWriteKind, bucket: string, name: string): void {
    const stats = this.stats;
    stats.objectWrites++;
    stats.writesByKind[kind] = (stats.writesByKind[kind] ?? 0) + 1;
    stats.writesByBucket[bucket] = (stats.writesByBucket[bucket] ?? 0) + 1;
    const key = `${bucket}/${name}`;
    stats.writesByObject[key] = (stats.writesByObject[key] ?? 0) + 1;
  }

  refused(code: number): void {
    if (code === 412 || code === 304) this.stats.preconditionFailures++;
    else if (code === 429) this.stats.rateLimited++;
  }

  /** A copy, so callers can keep it while the counters move on. */
  snapshot(): StorageEmulatorStats {
    return structuredClone(this.stats);
  }

  reset(): void {
    this.stats = emptyStats();
  }
}

function emptyStats(): StorageEmulatorStats {
  return {
    requests: 0,
    objectWrites: 0,
    writesByKind: {},
    writesByBucket: {},
    writesByObject: {},
    preconditionFailures: 0,
    rateLimited: 0,
    downloads: 0,
  };
}
