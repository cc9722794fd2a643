import { SpineError } from '../errors';

/** A line of an archive object is not an event: names the object and the line, so an operator can find it. */
export class ArchiveCorruptError extends SpineError {
  constructor(
    readonly object: string,
    readonly line: number,
    reason: string,
  ) {
    super('CORRUPT_DATA', `archive object ${object}, line ${line}: ${reason}`);
  }
}

/** An archive object could not be read (missing since it was listed, or the store failed). */
export class ArchiveUnreadableError extends SpineError {
  constructor(
    readonly object: string,
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE',
      `archive object ${object} could not be read${status ? ` (status ${status})` : ''}: ${(options?.cause as Error)?.message ?? 'unknown error'}`,
      options,
    );
  }
}

/** A point-in-time restore was asked for an instant that has not happened yet. */
export class RestorePointInFutureError extends SpineError {
  constructor(
    readonly at: Date,
    readonly now: Date,
  ) {
    super(
      'INVALID_ARGUMENT',
      `cannot restore to ${at.toISOString()}: it is in the future (now is ${now.toISOString()})`,
    );
  }
}

/**
 * A point-in-time restore of an instant before the event archive begins (or with an empty
 * archive), with no snapshot of the network at or before it to start from.
 */
export class RestorePointBeforeArchiveError extends SpineError {
  constructor(
    readonly networkId: string,
    readonly at: Date,
    readonly archiveBegins: Date | undefined,
  ) {
    super(
      'INVALID_ARGUMENT',
      `cannot restore network ${JSON.stringify(networkId)} to ${at.toISOString()}: ` +
        (archiveBegins
          ? `the event archive begins at ${archiveBegins.toISOString()}`
          : 'the event archive holds no events') +
        ' and no snapshot of the network was taken at or before that instant',
    );
  }
}

/** `restoreNetwork(..., { as })` into a network that already exists: a restore never overwrites another network. */
export class RestoreTargetExistsError extends SpineError {
  constructor(readonly networkId: string) {
    super(
      'INVALID_ARGUMENT',
      `cannot restore into network ${JSON.stringify(networkId)}: it exists; pick a new network id, or delete it first`,
    );
  }
}

/** At the instant asked, the network had no state (not yet written, or deleted): there is nothing to restore. */
export class NothingToRestoreError extends SpineError {
  constructor(
    readonly networkId: string,
    readonly at: Date,
  ) {
    super(
      'NETWORK_NOT_FOUND',
      `network ${JSON.stringify(networkId)} had no state at ${at.toISOString()} (not yet written, or deleted then): nothing to restore`,
    );
  }
}
