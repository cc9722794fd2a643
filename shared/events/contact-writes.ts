import type { ContactWrite } from '../blend';
import {
  EventType,
  type AnySpineEvent,
  type BundledContactWrite,
  type ContentReference,
  type SpineEvent,
} from './types';

/** An event that carries contact writes: one (`contact.written`) or a bundle of one writer's (`contacts.written`). */
export type ContactWriteEvent =
  SpineEvent<typeof EventType.ContactWritten> | SpineEvent<typeof EventType.ContactsWritten>;

/** One contact write of an event, as the Materializer applies it; `eventId` names it in acknowledgements (`causes`). */
export interface EventContactWrite {
  contactId: string;
  eventId: string;
  write: ContactWrite;
}

export function isContactWriteEvent(event: AnySpineEvent): event is ContactWriteEvent {
  return event.type === EventType.ContactWritten || event.type === EventType.ContactsWritten;
}

/**
 * The contact writes an event carries, in its order: the one conversion from an event to writes,
 * used by materialize (at once) and persist (at a flush). A lone write is a bundle of one whose
 * write id is the event's. Content stored by reference is read with `loadContent`, whose errors
 * pass through (a reference not stored yet is transient: see `isPermanent`).
 */
export async function contactWritesOf(
  event: ContactWriteEvent,
  loadContent: (reference: ContentReference) => Promise<unknown>,
): Promise<EventContactWrite[]> {
  const { writerId } = event.data;
  const bundled: BundledContactWrite[] =
    event.type === EventType.ContactsWritten ? event.data.writes : [{ ...event.data, id: event.id }];
  return Promise.all(
    bundled.map(async (w) => ({
      contactId: w.contactId,
      eventId: w.id,
      write: {
        content: w.contentRef ? await loadContent(w.contentRef) : w.content,
        stamp: w.stamp,
        writerId,
        seq: w.seq,
        ...(w.blendMode ? { blendMode: w.blendMode } : {}),
      },
    })),
  );
}
