import { fromPubSubMessage } from '../shared/events/pubsub';
import { EventType, type AnySpineEvent } from '../shared/events/types';
import type { DeadLetter } from '../shared/mesh/dead-letters';
import { previewValue } from './value-preview';

export const EVENT_KINDS = ['contact-write', 'group-change', 'dead-letter'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/** What the page shows of one event: small, display-ready, no state beyond a value preview. */
export interface DashboardEvent {
  /** The event id (CloudEvents `id`) or, when the data cannot be read, the Pub/Sub message id. */
  id: string;
  kind: EventKind;
  /** Short name of the event type, e.g. `contact.written`. */
  type: string;
  /** ISO time: when Pub/Sub accepted the message, or when a dead letter was recorded. */
  at: string;
  path: string;
  networkId?: string;
  groupId?: string;
  contactId?: string;
  /** Preview of the value written, for contact writes. */
  value?: string;
  /** One line about the rest: change kind, counts, a dead letter's reason. */
  detail?: string;
  writerId?: string;
}

/** The part of a Pub/Sub message the summaries read. */
export interface ReceivedMessage {
  id: string;
  data: Buffer;
  attributes: Record<string, string>;
  publishTime: { toISOString(): string };
}

/** `dev.superspine.contact.written.v1` → `contact.written`. */
function shortType(type: string | undefined): string {
  if (!type) return 'unknown';
  return type.replace(/^dev\.superspine\./, '').replace(/\.v\d+$/, '');
}

function describeEvent(event: AnySpineEvent): Pick<DashboardEvent, 'value' | 'detail' | 'contactId' | 'writerId'> {
  switch (event.type) {
    case EventType.ContactWritten: {
      const { data } = event;
      return {
        contactId: data.contactId,
        writerId: data.writerId,
        value: data.contentRef ? `(stored by reference: ${data.contentRef.size} bytes)` : previewValue(data.content),
        ...(data.blendMode ? { detail: data.blendMode } : {}),
      };
    }
    case EventType.ContactsWritten: {
      const { data } = event;
      const contacts = [...new Set(data.writes.map((w) => w.contactId))];
      const last = data.writes[data.writes.length - 1]!;
      return {
        contactId: contacts.length === 1 ? contacts[0]! : `${contacts.length} contacts`,
        writerId: data.writerId,
        value: last.contentRef ? `(stored by reference: ${last.contentRef.size} bytes)` : previewValue(last.content),
        detail: `${data.writes.length} writes bundled`,
      };
    }
    case EventType.GroupSaved:
      return {
        writerId: event.data.writerId,
        detail: event.data.state
          ? `group saved: ${event.data.state.contacts.size} contacts`
          : 'group saved (stored by reference)',
      };
    case EventType.GroupDeleted:
      return { writerId: event.data.writerId, detail: 'group deleted' };
    case EventType.NetworkSaved:
      return {
        writerId: event.data.writerId,
        detail: event.data.state
          ? `network saved: ${event.data.state.groups.size} groups`
          : 'network saved (stored by reference)',
      };
    case EventType.NetworkDeleted:
      return { writerId: event.data.writerId, detail: 'network deleted' };
    case EventType.SnapshotRequested:
      return {
        writerId: event.data.requestedBy,
        detail: `snapshot ${event.data.snapshotId}${event.data.label ? ` "${event.data.label}"` : ''} requested`,
      };
    case EventType.FlushRequested:
      return { writerId: event.data.requestedBy, detail: 'flush requested' };
    case EventType.GroupChanged: {
      const { data } = event;
      const parts: string[] = [data.kind];
      if (data.unchanged) parts.push('unchanged');
      if (data.state) parts.push(`${data.state.contacts.size} contacts`);
      if (data.causes) parts.push(`${data.causes.length} writes batched`);
      return { ...(data.writerId ? { writerId: data.writerId } : {}), detail: parts.join(', ') };
    }
    case EventType.NetworkChanged:
      return {
        ...(event.data.writerId ? { writerId: event.data.writerId } : {}),
        detail: `network ${event.data.kind}${event.data.unchanged ? ', unchanged' : ''}`,
      };
  }
}

/** A contact-writes or group-changes message as the page shows it; unreadable data is shown as such, not dropped. */
export function summarizeMessage(kind: Exclude<EventKind, 'dead-letter'>, message: ReceivedMessage): DashboardEvent {
  const at = message.publishTime.toISOString();
  try {
    const event = fromPubSubMessage(message);
    const data = event.data as { networkId: string; groupId?: string };
    return {
      id: event.id,
      kind,
      type: shortType(event.type),
      at,
      path: event.subject,
      networkId: data.networkId,
      ...(data.groupId !== undefined ? { groupId: data.groupId } : {}),
      ...describeEvent(event),
    };
  } catch (error) {
    return {
      id: message.id,
      kind,
      type: shortType(message.attributes.type),
      at,
      path: message.attributes.path ?? '',
      detail: `unreadable: ${(error as Error).message}`,
    };
  }
}

/** A message Pub/Sub forwarded to the dead-letter topic after too many delivery attempts. */
export function summarizeDeadLetterMessage(message: ReceivedMessage): DashboardEvent {
  const attempts = message.attributes.CloudPubSubDeadLetterSourceDeliveryCount;
  const subscription = message.attributes.CloudPubSubDeadLetterSourceSubscription;
  return {
    // The deadletter function stores it under this id, so the store's copy is recognised as the same letter.
    id: message.id,
    kind: 'dead-letter',
    type: shortType(message.attributes.type),
    at: message.publishTime.toISOString(),
    path: message.attributes.path ?? '',
    ...(message.attributes.networkId ? { networkId: message.attributes.networkId } : {}),
    ...(message.attributes.groupId ? { groupId: message.attributes.groupId } : {}),
    detail: `not acknowledged after ${attempts ?? 'too many'} delivery attempts${subscription ? ` on ${subscription}` : ''}`,
  };
}

/** A dead letter found in the store (materialize files unapplicable events there directly). */
export function summarizeStoredDeadLetter(letter: DeadLetter): DashboardEvent {
  return {
    id: letter.id,
    kind: 'dead-letter',
    type: shortType(letter.attributes.type),
    at: letter.recordedAt,
    path: letter.attributes.path ?? letter.orderingKey ?? '',
    ...(letter.attributes.networkId ? { networkId: letter.attributes.networkId } : {}),
    ...(letter.attributes.groupId ? { groupId: letter.attributes.groupId } : {}),
    detail: letter.reason,
  };
}
