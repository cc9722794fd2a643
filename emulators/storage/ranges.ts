import { invalid, rangeNotSatisfiable } from './errors';

/** What one PUT to a resumable session says about its bytes (its `Content-Range`). */
export type UploadRange =
  /** `bytes *\/*` or `bytes *\/N`: a status query, or (with N) "that was all". */
  | { kind: 'status'; total?: number }
  /** `bytes A-B/T`, `bytes A-*\/T`: data starting at A; `last` absent for `*`, `total` absent for `*`. */
  | { kind: 'data'; first: number; last?: number; total?: number };

const STATUS = /^bytes \*\/(\d+|\*)$/;
// The client sends `bytes 0--1/0` for an empty final chunk, hence the -1.
const DATA = /^bytes (\d+)-(-1|\d+|\*)\/(\d+|\*)$/;

/** Parses a resumable upload's Content-Range; a request without one carries the whole object. */
export function parseUploadRange(header: string | undefined, bodyLength: number): UploadRange {
  if (header === undefined || header.trim() === '') {
    return { kind: 'data', first: 0, last: bodyLength - 1, total: bodyLength };
  }
  const text = header.trim();
  const status = STATUS.exec(text);
  if (status) return status[1] === '*' ? { kind: 'status' } : { kind: 'status', total: Number(status[1]) };
  const data = DATA.exec(text);
  if (!data) throw invalid(`Failed to parse Content-Range header: ${text}`);
  const [, first, last, total] = data as unknown as [string, string, string, string];
  return {
    kind: 'data',
    first: Number(first),
    ...(last !== '*' && { last: Number(last) }),
    ...(total !== '*' && { total: Number(total) }),
  };
}

/** A byte range of a download, end exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a download's `Range: bytes=a-b | a- | -n` against the object size. Unparsable or
 * multi-range headers are ignored (the whole object is sent), as HTTP allows; a range that
 * starts past the end is 416.
 */
export function parseByteRange(header: string | undefined, size: number): ByteRange | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, startText = '', endText = ''] = match;
  if (startText === '' && endText === '') return undefined;
  if (startText === '') {
    const suffix = Number(endText);
    if (suffix === 0) throw rangeNotSatisfiable();
    return { start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(startText);
  const last = endText === '' ? size - 1 : Math.min(Number(endText), size - 1);
  if (endText !== '' && Number(endText) < start) return undefined;
  if (start >= size) throw rangeNotSatisfiable();
  return { start, end: last + 1 };
}
