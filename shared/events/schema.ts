import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { InvalidEventError, SpineError } from '../errors';
import { isStamp } from '../hlc';
import {
  changePath,
  validateContactId,
  validateGroupId,
  validateNetworkId,
  validateSnapshotId,
  validateWriterId,
} from '../ids';
import { validateGroupState, validateNetworkState } from '../state-validation';
import {
  EventType,
  MAX_BUNDLED_WRITES,
  type AnySpineEvent,
  type EventDataByType,
  type EventTypeName,
  type SpineEvent,
} from './types';

const idOf = (validate: (id: unknown) => string) =>
  z.string().superRefine((value, ctx) => {
    try {
      validate(value);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
    }
  });

const networkId = idOf(validateNetworkId);
const groupId = idOf(validateGroupId);
const origin = {
  writerId: idOf(validateWriterId),
  seq: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  stamp: z.string().refine(isStamp, 'must be a hybrid-logical-clock stamp'),
};
const contentReference = z.object({
  object: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
});
const stateObject = z.custom<object>((value) => typeof value === 'object' && value !== null, 'must be an object');

const dataSchemas = {
  [EventType.ContactWritten]: z
    .object({
      networkId,
      groupId,
      contactId: idOf(validateContactId),
      content: z.unknown().optional(),
      contentRef: contentReference.optional(),
      blendMode: z.enum(['accept-last', 'merge']).optional(),
      ...origin,
    })
    .refine(
      (d) => !('content' in d && d.content !== undefined && d.contentRef !== undefined),
      'content and contentRef are exclusive',
    ),
  [EventType.ContactsWritten]: z
    .object({
      networkId,
      groupId,
      writerId: origin.writerId,
      writes: z
        .array(
          z
            .object({
              id: z.string().min(1).max(1024),
              contactId: idOf(validateContactId),
              content: z.unknown().optional(),
              contentRef: contentReference.optional(),
              blendMode: z.enum(['accept-last', 'merge']).optional(),
              seq: origin.seq,
              stamp: origin.stamp,
            })
            .refine(
              (w) => !('content' in w && w.content !== undefined && w.contentRef !== undefined),
              'content and contentRef are exclusive',
            ),
        )
        .min(1)
        .max(MAX_BUNDLED_WRITES),
    })
    .refine((d) => new Set(d.writes.map((w) => w.id)).size === d.writes.length, 'write ids must be unique in a bundle')
    .refine(
      (d) => new Set(d.writes.map((w) => `${w.seq} ${w.contactId}`)).size === d.writes.length,
      "a contact's sequence numbers must be unique in a bundle",
    ),
  [EventType.GroupSaved]: z
    .object({ networkId, groupId, state: stateObject.optional(), stateRef: contentReference.optional(), ...origin })
    .refine((d) => (d.state === undefined) !== (d.stateRef === undefined), 'exactly one of state and stateRef'),
  [EventType.GroupDeleted]: z.object({ networkId, groupId, ...origin }),
  [EventType.NetworkSaved]: z
    .object({ networkId, state: stateObject.optional(), stateRef: contentReference.optional(), ...origin })
    .refine((d) => (d.state === undefined) !== (d.stateRef === undefined), 'exactly one of state and stateRef'),
  [EventType.NetworkDeleted]: z.object({ networkId, ...origin }),
  [EventType.SnapshotRequested]: z.object({
    networkId,
    label: z.string().max(1024).optional(),
    snapshotId: idOf(validateSnapshotId),
    requestedBy: z.string().min(1),
  }),
  [EventType.GroupChanged]: z.object({
    networkId,
    groupId,
    kind: z.enum(['updated', 'deleted']),
    causeId: z.string().min(1),
    state: stateObject.optional(),
    writerId: z.string().min(1).optional(),
    unchanged: z.boolean().optional(),
    causes: z.array(z.object({ eventId: z.string().min(1), writerId: z.string().min(1) })).optional(),
  }),
  [EventType.FlushRequested]: z.object({ networkId, requestedBy: z.string().min(1) }),
  [EventType.NetworkChanged]: z.object({
    networkId,
    kind: z.enum(['updated', 'deleted']),
    causeId: z.string().min(1),
    writerId: z.string().min(1).optional(),
    unchanged: z.boolean().optional(),
  }),
} satisfies Record<EventTypeName, z.ZodType>;

// Date.parse alone also takes "2024", "March 7, 2024" or February 30; CloudEvents requires RFC 3339.
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/i;

function isRfc3339(time: string): boolean {
  const match = RFC3339.exec(time);
  if (!match || Number.isNaN(Date.parse(time))) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

const envelopeSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1).max(1024),
  source: z.string().min(1).max(1024),
  type: z.enum(Object.values(EventType) as [EventTypeName, ...EventTypeName[]]),
  time: z.string().refine(isRfc3339, 'must be an RFC 3339 time'),
  datacontenttype: z.literal('application/json'),
  subject: z.string().min(1),
  data: z.unknown(),
});

function issuesOf(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(event)'}: ${issue.message}`);
}

/** The subject (and Pub/Sub `path` attribute) an event's data implies. */
export function subjectOf(type: EventTypeName, data: { networkId: string; groupId?: string }): string {
  return data.groupId !== undefined &&
    type !== EventType.NetworkSaved &&
    type !== EventType.NetworkDeleted &&
    type !== EventType.SnapshotRequested &&
    type !== EventType.NetworkChanged &&
    type !== EventType.FlushRequested
    ? changePath(data.networkId, data.groupId)
    : data.networkId;
}

/** Checks an event fully: envelope, data shape, ids, and any group or network state it carries. */
export function validateEvent(candidate: unknown, maxContentBytes = Infinity): AnySpineEvent {
  const envelope = envelopeSchema.safeParse(candidate);
  if (!envelope.success) throw new InvalidEventError('malformed event envelope', issuesOf(envelope.error));
  const type = envelope.data.type;
  const data = dataSchemas[type].safeParse(envelope.data.data);
  if (!data.success) throw new InvalidEventError(`malformed ${type} data`, issuesOf(data.error));
  const parsed = data.data as { networkId: string; groupId?: string; state?: unknown };
  const expectedSubject = subjectOf(type, parsed);
  if (envelope.data.subject !== expectedSubject) {
    throw new InvalidEventError('event subject does not match its data', [
      `subject: ${JSON.stringify(envelope.data.subject)}, expected ${JSON.stringify(expectedSubject)}`,
    ]);
  }
  try {
    if (
      (type === EventType.GroupSaved || type === EventType.GroupChanged) &&
      parsed.state !== undefined &&
      parsed.groupId !== undefined
    ) {
      validateGroupState(parsed.groupId, parsed.state as never, maxContentBytes);
    }
    if (type === EventType.NetworkSaved && parsed.state !== undefined)
      validateNetworkState(parsed.state as never, maxContentBytes);
  } catch (error) {
    if (error instanceof SpineError)
      throw new InvalidEventError(`invalid state in ${type} event`, [`state: ${error.message}`]);
    throw error;
  }
  // The original data, not zod's copy: zod would drop Map prototypes it does not know.
  return candidate as AnySpineEvent;
}

export interface CreateEventOptions {
  /** CloudEvents `source`, e.g. `//superspine/writers/agent-7`. */
  source: string;
  id?: string;
  time?: Date;
}

export function createEvent<T extends EventTypeName>(
  type: T,
  data: EventDataByType[T],
  options: CreateEventOptions,
): SpineEvent<T> {
  const event: SpineEvent<T> = {
    specversion: '1.0',
    id: options.id ?? randomUUID(),
    source: options.source,
    type,
    time: (options.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    subject: subjectOf(type, data as { networkId: string; groupId?: string }),
    data,
  };
  return validateEvent(event) as SpineEvent<T>;
}
