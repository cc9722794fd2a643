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
