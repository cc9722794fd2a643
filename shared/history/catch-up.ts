import { MemoryStorage } from '../backends/memory';
import type { Materializer } from '../backends/materialized-state';
import { decode } from '../codec';
import { InvalidArgumentError, SpineError } from '../errors';
import { contactWritesOf } from '../events/contact-writes';
import { EventType, type AnySpineEvent, type ContentReference } from '../events/types';
import { changePath, pathMatches, type ParsedPath } from '../ids';
import { silentLogger } from '../log';
import type { GroupChange, GroupChangeKind, GroupState, NetworkState } from '../model';
import type { ArchiveReader } from './archive-reader';
import type { ContentLoader } from './replay';

/** `since` of a catch-up subscription lies where the archive cannot answer: in the future, or before it begins. */
export class SinceOutOfRangeError extends SpineError {
  constructor(
    readonly since: Date,
    readonly reason: 'future' | 'before-archive',
    /** When the archive begins (its oldest batch); undefined when it holds nothing yet. */
    readonly archiveBegins: Date | undefined,
  ) {
    super(
      'INVALID_ARGUMENT',
      reason === 'future'
        ? `subscribe: since (${since.toISOString()}) is in the future`
        : archiveBegins
          ? `subscribe: since (${since.toISOString()}) is before the event archive begins (${archiveBegins.toISOString()})`
          : `subscribe: since (${since.toISOString()}) is before the event archive begins: the archive holds no events yet`,
    );
  }
}

/** `since` as a Date; anything but a Date or an ISO 8601 time is an `InvalidArgumentError`. */
export function parseSince(value: unknown): Date {
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime()))
    throw new InvalidArgumentError(`subscribe: since must be a Date or an ISO 8601 time, not ${JSON.stringify(value)}`);
  return date;
}

/**
 * When the archive's record begins: the time of the oldest event in its oldest batch (or batches
 * begun in the same second). A batch begins after the events in it were accepted, so its name's
 * time would refuse a `since` that the archive covers; events older than its oldest one may be
 * gone (retention) or never archived. Undefined when the archive is empty.
 */
export async function archiveBeginsAt(archive: ArchiveReader): Promise<Date | undefined> {
  const firstBatch = await archive.begins();
  if (!firstBatch) return undefined;
  const oldest = await archive.listObjects({ to: firstBatch });
  let begins = firstBatch.getTime();
  for (const object of oldest)
    for (const event of await archive.readObject(object.name)) begins = Math.min(begins, Date.parse(event.time));
  return new Date(begins);
}

/** Refuses a `since` in the future or before the archive begins (nothing is changed by the check). */
export async function checkSince(archive: ArchiveReader, since: Date, now = Date.now()): Promise<void> {
  if (since.getTime() > now) throw new SinceOutOfRangeError(since, 'future', undefined);
  const begins = await archiveBeginsAt(archive);
  if (!begins || since.getTime() < begins.getTime()) throw new SinceOutOfRangeError(since, 'before-archive', begins);
}

/** One group change an archived event makes, as the materialize function announces it. */
export interface ArchivedChange {
  networkId: string;
  groupId: string;
  kind: GroupChangeKind;
  /** Applied already, or lost to a newer write: live subscribers are not called for it either. */
  unchanged: boolean;
  /** The writes it covers: the event's id, or a bundle's write ids. */
  eventIds: string[];
}

/**
 * Applies one archived event to `state` with the materializer's own calls (the blend code the
 * materialize function runs) and returns the group changes it announces for it: one per group a
 * save or delete touches, one per contact-write event.
 */
export async function changesOfEvent(
  state: Materializer,
  event: AnySpineEvent,
  loadContent: ContentLoader,
): Promise<ArchivedChange[]> {
  const load = async <T>(reference: ContentReference) => decode<T>(await loadContent(reference));
  const one = (networkId: string, groupId: string, kind: GroupChangeKind, unchanged: boolean, ids = [event.id]) => ({
    networkId,
    groupId,
    kind,
    unchanged,
    eventIds: ids,
  });
  switch (event.type) {
    case EventType.ContactWritten: {
      const d = event.data;
      const [outcome] = await state.applyContactWrites(d.networkId, d.groupId, await contactWritesOf(event, load));
      return [one(d.networkId, d.groupId, 'updated', !(outcome!.contentChanged || outcome!.contradiction))];
    }
    case EventType.ContactsWritten: {
      const d = event.data;
      const writes = await contactWritesOf(event, load);
      const outcomes = await state.applyContactWriteBatch(d.networkId, d.groupId, writes);
      const unchanged = !outcomes.some((o) => o.contentChanged || o.contradiction);
      return [
        one(
          d.networkId,
          d.groupId,
          'updated',
          unchanged,
          writes.map((w) => w.eventId),
        ),
      ];
    }
    case EventType.GroupSaved: {
      const d = event.data;
      const groupState = d.stateRef ? await load<GroupState>(d.stateRef) : d.state!;
      const applied = await state.applyGroupSave(d.networkId, d.groupId, groupState, d);
      return [one(d.networkId, d.groupId, 'updated', !applied)];
    }
    case EventType.GroupDeleted: {
      const d = event.data;
      const removed = await state.applyGroupDelete(d.networkId, d.groupId, d);
      if (removed.length === 0) return [one(d.networkId, d.groupId, 'deleted', true)];
      return removed.map((groupId) => one(d.networkId, groupId, 'deleted', false));
    }
    case EventType.NetworkSaved: {
      const d = event.data;
      const networkState = d.stateRef ? await load<NetworkState>(d.stateRef) : d.state!;
      const outcome = await state.applyNetworkSave(d.networkId, networkState, d);
      if (!outcome) return [];
      return [
        ...outcome.written.map((groupId) => one(d.networkId, groupId, 'updated', false)),
        ...outcome.removed.map((groupId) => one(d.networkId, groupId, 'deleted', false)),
      ];
    }
    case EventType.NetworkDeleted: {
      const d = event.data;
      const groups = await state.applyNetworkDelete(d.networkId, d);
      return (groups ?? []).map((groupId) => one(d.networkId, groupId, 'deleted', false));
    }
    default:
      return [];
  }
}

/** A change delivered from the archive: the group's state right after it (null once deleted). */
export interface CatchUpDelivery {
  state: GroupState | null;
  change: GroupChange;
}

/** Key of a write's change to one group: what the seam de-duplicates by. */
export const seamKey = (groupId: string, eventId: string) => `${groupId}\u0000${eventId}`;

/**
 * The changes under `path` after `since`, from the archive: the network's archived events are
 * replayed from the archive's beginning into an in-memory state (as `history` does), so each
 * delivered state is the group as the materializer made it from the same events. `seen` receives
 * the seam key of every write at or after `rememberFrom`, delivered or (at or before `since`)
 * skipped, so the live side can drop what the archive covered.
 */
export async function* readCatchUp(
  archive: ArchiveReader,
  loadContent: ContentLoader,
  path: ParsedPath,
  since: Date,
  seen: Set<string>,
  rememberFrom: number,
): AsyncGenerator<CatchUpDelivery> {
  const { networkId } = path;
  // In write order already: the reader sorts what it reads (`compareEvents`).
  const events = await archive.read({ networkId });
  const state = new MemoryStorage({ writerId: 'catch-up-replay', logger: silentLogger });
  await state.initialize();
  try {
    for (const event of events) {
      const time = new Date(event.time);
      const changes = await changesOfEvent(state, event, loadContent);
      const after = time.getTime() > since.getTime();
      for (const change of changes) {
        if (!pathMatches(path, change.networkId, change.groupId)) continue;
        if (time.getTime() >= rememberFrom) for (const id of change.eventIds) seen.add(seamKey(change.groupId, id));
        if (!after || change.unchanged) continue;
        const groupState = change.kind === 'deleted' ? null : await state.loadGroupState(networkId, change.groupId);
        if (change.kind === 'updated' && groupState === null) continue;
        yield {
          state: groupState,
          change: {
            networkId,
            groupId: change.groupId,
            path: changePath(networkId, change.groupId),
            kind: change.kind,
            time,
            eventIds: change.eventIds,
          },
        };
      }
    }
  } finally {
    await state.close();
  }
}
