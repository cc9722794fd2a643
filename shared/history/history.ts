import { MemoryStorage } from '../backends/memory';
import { InvalidArgumentError } from '../errors';
import { validateContactId, validateGroupId, validateNetworkId } from '../ids';
import { silentLogger } from '../log';
import type { ArchiveReader } from './archive-reader';
import { replayEvent, type ContentLoader, type ReplayedWrite } from './replay';

export type { HistoryOutcome } from './replay';

/** One entry of a history: a write (contact write, group or network save or delete) with what it did. */
export type HistoryEntry = ReplayedWrite;

export interface HistoryOptions {
  /** Entries at or after this time (a Date or an ISO 8601 string). */
  from?: Date | string;
  /** Entries at or before this time. */
  to?: Date | string;
  /** Entries per page: 1 to `MAX_HISTORY_LIMIT`, `DEFAULT_HISTORY_LIMIT` by default. */
  limit?: number;
  /** The `cursor` of the previous page: the next (older) entries. */
  cursor?: string;
}

export interface HistoryPage {
  /** Newest first. */
  entries: HistoryEntry[];
  /** Present when older entries remain: pass it back for the next page. */
  cursor?: string;
}

export const DEFAULT_HISTORY_LIMIT = 100;
export const MAX_HISTORY_LIMIT = 1_000;

interface Position {
  time: number;
  stamp: string;
  eventId: string;
}

export interface ResolvedHistoryOptions {
  from?: Date;
  to?: Date;
  limit: number;
  after?: Position;
}

function timeOption(name: string, value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime()))
    throw new InvalidArgumentError(`history: ${name} must be a Date or an ISO 8601 time, not ${JSON.stringify(value)}`);
  return date;
}

/** Checks history options once, as they enter; a bad one is an `InvalidArgumentError` naming it. */
export function resolveHistoryOptions(options: HistoryOptions = {}): ResolvedHistoryOptions {
  if (options === null || typeof options !== 'object')
    throw new InvalidArgumentError('history: options must be an object');
  const from = timeOption('from', options.from);
  const to = timeOption('to', options.to);
  if (from && to && from.getTime() > to.getTime())
    throw new InvalidArgumentError(`history: from (${from.toISOString()}) is after to (${to.toISOString()})`);
  const limit = options.limit ?? DEFAULT_HISTORY_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT)
    throw new InvalidArgumentError(
      `history: limit must be an integer from 1 to ${MAX_HISTORY_LIMIT}, not ${String(limit)}`,
    );
  return {
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    limit,
    ...(options.cursor !== undefined ? { after: decodeCursor(options.cursor) } : {}),
  };
}

function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify([position.time, position.stamp, position.eventId]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: unknown): Position {
  const invalid = () => new InvalidArgumentError('history: cursor is not one a history page returned');
  if (typeof cursor !== 'string' || cursor.length > 4096) throw invalid();
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(value) &&
      value.length === 3 &&
      Number.isFinite(value[0]) &&
      typeof value[1] === 'string' &&
      typeof value[2] === 'string'
    )
      return { time: value[0] as number, stamp: value[1], eventId: value[2] };
  } catch {
    // fall through
  }
  throw invalid();
}

/** Newest first: by time, then clock stamp, then id, so pages never overlap or skip. */
function compareNewestFirst(a: Position, b: Position): number {
  if (a.time !== b.time) return b.time - a.time;
  if (a.stamp !== b.stamp) return a.stamp < b.stamp ? 1 : -1;
  return a.eventId < b.eventId ? 1 : a.eventId > b.eventId ? -1 : 0;
}

const positionOf = (entry: HistoryEntry): Position => ({
  time: entry.time.getTime(),
  stamp: entry.stamp,
  eventId: entry.eventId,
});

/**
 * A network's history from the event archive: of the whole network, one group, or one contact.
 * Outcomes come from replaying the archive from its beginning into an in-memory state with the
 * materializer the functions use (contact writes of other contacts are skipped when only one
 * contact is asked for; group and network operations are always applied, since they change it).
 */
export async function readHistory(
  archive: ArchiveReader,
  loadContent: ContentLoader,
  networkId: string,
  groupId: string | undefined,
  contactId: string | undefined,
  options: HistoryOptions = {},
): Promise<HistoryPage> {
  validateNetworkId(networkId);
  if (groupId !== undefined) validateGroupId(groupId);
  if (contactId !== undefined) {
    if (groupId === undefined) throw new InvalidArgumentError('history: a contact is named within its group');
    validateContactId(contactId);
  }
  const resolved = resolveHistoryOptions(options);
  const events = await archive.read({
    networkId,
    ...(groupId !== undefined ? { groupId } : {}),
    ...(contactId !== undefined ? { contactId } : {}),
    ...(resolved.to ? { to: resolved.to } : {}),
  });
  const state = new MemoryStorage({ writerId: 'history-replay', logger: silentLogger });
  const entries: HistoryEntry[] = [];
  try {
    await state.initialize();
    const wanted = (g: string, c: string) =>
      (groupId === undefined || g === groupId) && (contactId === undefined || c === contactId);
    for (const event of events) {
      for (const entry of await replayEvent(state, event, loadContent, wanted)) {
        if (entry.groupId !== undefined && groupId !== undefined && entry.groupId !== groupId) continue;
        if (resolved.from && entry.time.getTime() < resolved.from.getTime()) continue;
        entries.push(entry);
      }
    }
  } finally {
    await state.close();
  }
  const ordered = entries.sort((a, b) => compareNewestFirst(positionOf(a), positionOf(b)));
  const after = resolved.after;
  const start = after ? ordered.findIndex((entry) => compareNewestFirst(positionOf(entry), after) > 0) : 0;
  const remaining = start < 0 ? [] : ordered.slice(start);
  const page = remaining.slice(0, resolved.limit);
  return {
    entries: page,
    ...(remaining.length > page.length ? { cursor: encodeCursor(positionOf(page[page.length - 1]!)) } : {}),
  };
}
