import type { BlendOutcome } from '../blend';
import type { Materializer } from '../backends/materialized-state';
import { decode } from '../codec';
import { contactWritesOf } from '../events/contact-writes';
import { EventType, type AnySpineEvent, type ContentReference } from '../events/types';
import type { BlendMode, GroupState, NetworkState } from '../model';

/** What applying one archived write did to the state. */
export type HistoryOutcome = 'changed' | 'unchanged' | 'contradiction';

/** One write an archived event carried, with what applying it did. */
export interface ReplayedWrite {
  kind: 'contact-write' | 'group-saved' | 'group-deleted' | 'network-saved' | 'network-deleted';
  /** The event's id, or for a write in a bundle the write's own id. */
  eventId: string;
  time: Date;
  writerId: string;
  seq: number;
  stamp: string;
  networkId: string;
  groupId?: string;
  contactId?: string;
  /** Contact writes: the content written and the contact's blend mode once applied. */
  content?: unknown;
  blendMode?: BlendMode;
  outcome: HistoryOutcome;
}

/** Reads content stored by reference (the events of large writes carry only the reference). */
export type ContentLoader = (reference: ContentReference) => Promise<Buffer>;

/** Only these contact writes are applied (a contact's history needs no other contact's writes). */
export type ContactWriteFilter = (groupId: string, contactId: string) => boolean;

function outcomeOf(blend: BlendOutcome): HistoryOutcome {
  if (blend.contradiction) return 'contradiction';
  return blend.contentChanged ? 'changed' : 'unchanged';
}

/**
 * Applies one archived event to `state` as the materialize function does (the same `Materializer`
 * calls, so the same blend semantics), and returns each write it carried with its outcome.
 * Events other than writes (snapshot and flush requests) return nothing.
 */
export async function replayEvent(
  state: Materializer,
  event: AnySpineEvent,
  loadContent: ContentLoader,
  includeContactWrite: ContactWriteFilter = () => true,
): Promise<ReplayedWrite[]> {
  const time = new Date(event.time);
  const load = async <T>(reference: ContentReference) => decode<T>(await loadContent(reference));
  switch (event.type) {
    case EventType.ContactWritten:
    case EventType.ContactsWritten: {
      const d = event.data;
      const writes = (await contactWritesOf(event, load)).filter((w) => includeContactWrite(d.groupId, w.contactId));
      if (writes.length === 0) return [];
      const outcomes =
        event.type === EventType.ContactsWritten
          ? await state.applyContactWriteBatch(d.networkId, d.groupId, writes)
          : await state.applyContactWrites(d.networkId, d.groupId, writes);
      return writes.map((w, index) => ({
        kind: 'contact-write',
        eventId: w.eventId,
        time,
        writerId: w.write.writerId,
        seq: w.write.seq,
        stamp: w.write.stamp,
        networkId: d.networkId,
        groupId: d.groupId,
        contactId: w.contactId,
        content: w.write.content,
        blendMode: outcomes[index]!.contact.blendMode,
        outcome: outcomeOf(outcomes[index]!),
      }));
    }
    case EventType.GroupSaved: {
      const d = event.data;
      const groupState = d.stateRef ? await load<GroupState>(d.stateRef) : d.state!;
      const applied = await state.applyGroupSave(d.networkId, d.groupId, groupState, d);
      return [origin('group-saved', event.id, time, d, applied ? 'changed' : 'unchanged', d.groupId)];
    }
    case EventType.GroupDeleted: {
      const d = event.data;
      const removed = await state.applyGroupDelete(d.networkId, d.groupId, d);
      return [origin('group-deleted', event.id, time, d, removed.length ? 'changed' : 'unchanged', d.groupId)];
    }
    case EventType.NetworkSaved: {
      const d = event.data;
      const networkState = d.stateRef ? await load<NetworkState>(d.stateRef) : d.state!;
      const outcome = await state.applyNetworkSave(d.networkId, networkState, d);
      return [origin('network-saved', event.id, time, d, outcome ? 'changed' : 'unchanged')];
    }
    case EventType.NetworkDeleted: {
      const d = event.data;
      const groups = await state.applyNetworkDelete(d.networkId, d);
      return [origin('network-deleted', event.id, time, d, groups ? 'changed' : 'unchanged')];
    }
    default:
      return [];
  }
}

function origin(
  kind: ReplayedWrite['kind'],
  eventId: string,
  time: Date,
  d: { networkId: string; writerId: string; seq: number; stamp: string },
  outcome: HistoryOutcome,
  groupId?: string,
): ReplayedWrite {
  return {
    kind,
    eventId,
    time,
    writerId: d.writerId,
    seq: d.seq,
    stamp: d.stamp,
    networkId: d.networkId,
    ...(groupId !== undefined ? { groupId } : {}),
    outcome,
  };
}
