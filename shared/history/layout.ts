import { randomUUID } from 'node:crypto';
import type { ArchiveSpec } from '../topology';

/**
 * Names of archive objects, as a Pub/Sub Cloud Storage subscription makes them:
 * `<objectPrefix><YYYY-MM-DD/hh/mm-ss>_<uuid><suffix>`, the datetime (UTC) being when the object's
 * batch began. Names sort by that time, so a time range of batches is a range of names.
 */
export type ArchiveLayout = Pick<ArchiveSpec, 'objectPrefix' | 'datetimeFormat' | 'suffix'>;

const pad = (value: number, width = 2) => String(value).padStart(width, '0');

/** `YYYY-MM-DD/hh/mm-ss` of `date` in UTC. */
export function formatArchiveDatetime(date: Date): string {
  return (
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}/` +
    `${pad(date.getUTCHours())}/${pad(date.getUTCMinutes())}-${pad(date.getUTCSeconds())}`
  );
}

export function archiveObjectName(layout: ArchiveLayout, batchStart: Date, uuid: string = randomUUID()): string {
  return `${layout.objectPrefix}${formatArchiveDatetime(batchStart)}_${uuid}${layout.suffix}`;
}

const NAME_PATTERN = /^(\d{4})-(\d{2})-(\d{2})\/(\d{2})\/(\d{2})-(\d{2})_([0-9a-fA-F-]{36})/;

/** When the batch of an archive object began (to the second), or undefined for a name outside the layout. */
export function batchStartOf(layout: ArchiveLayout, name: string): Date | undefined {
  if (!name.startsWith(layout.objectPrefix) || !name.endsWith(layout.suffix)) return undefined;
  const match = NAME_PATTERN.exec(name.slice(layout.objectPrefix.length));
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second] = match.map(Number);
  return new Date(Date.UTC(year!, month! - 1, day!, hour!, minute!, second!));
}

/**
 * The names a listing for batches begun in `[from, to]` covers: `startOffset` inclusive, `endOffset`
 * exclusive (the next second), as Cloud Storage takes them.
 */
export function archiveNameRange(
  layout: ArchiveLayout,
  from: Date | undefined,
  to: Date | undefined,
): { startOffset?: string; endOffset?: string } {
  const floorSecond = (date: Date) => new Date(Math.floor(date.getTime() / 1000) * 1000);
  return {
    ...(from ? { startOffset: `${layout.objectPrefix}${formatArchiveDatetime(floorSecond(from))}` } : {}),
    ...(to
      ? { endOffset: `${layout.objectPrefix}${formatArchiveDatetime(new Date(floorSecond(to).getTime() + 1000))}` }
      : {}),
  };
}
