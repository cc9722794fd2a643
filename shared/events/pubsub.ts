import { createHash } from 'node:crypto';
import { decode, encodeToBuffer } from '../codec';
import { CorruptDataError, InvalidEventError } from '../errors';
import { validateEvent } from './schema';
import type { AnySpineEvent } from './types';

/** Attributes every Super Spine message carries, for subscription filters and routing. */
export interface SpineMessageAttributes {
  type: string;
  networkId: string;
  /** Absent for network-level events. */
  groupId?: string;
  /** `network/group` or `network`. */
  path: string;
  'ce-id': string;
  'ce-specversion': string;
}

export interface SpineMessage {
  data: Buffer;
  attributes: SpineMessageAttributes;
  /** Messages about one group (or one network) are delivered in order. */
  orderingKey: string;
}

/** Pub/Sub's limit for one message. */
export const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** Pub/Sub's limit for an attribute value and for an ordering key. */
export const MAX_ATTRIBUTE_BYTES = 1024;
/** Long attribute values are cut to this many bytes (on a character boundary), so prefix filters still work. */
const TRUNCATED_ATTRIBUTE_BYTES = 1000;

/**
 * Ids may be 1024 bytes each, so a path can exceed what Pub/Sub takes in an attribute. Such
 * values are cut to a prefix: `hasPrefix` filters on shorter prefixes still match, and
 * receivers check the full ids inside the event.
 */
export function attributeValue(value: string): string {
  if (Buffer.byteLength(value, 'utf8') <= MAX_ATTRIBUTE_BYTES) return value;
  let cut = '';
  for (const char of value) {
    if (Buffer.byteLength(cut + char, 'utf8') > TRUNCATED_ATTRIBUTE_BYTES) break;
    cut += char;
  }
  return cut;
}

/** The path itself when it fits, else a digest of it: one key per path either way. */
export function orderingKeyFor(path: string): string {
  if (Buffer.byteLength(path, 'utf8') <= MAX_ATTRIBUTE_BYTES) return path;
  return `sha256:${createHash('sha256').update(path, 'utf8').digest('hex')}`;
}

function matchesAttribute(attribute: string, actual: string): boolean {
  return attribute === attributeValue(actual);
}

export function toPubSubMessage(event: AnySpineEvent, maxBytes = MAX_MESSAGE_BYTES): SpineMessage {
  validateEvent(event);
  return encodePubSubMessage(event, maxBytes);
}

/** `toPubSubMessage` without validating again, for an event `createEvent` just made (and checked). */
export function encodePubSubMessage(event: AnySpineEvent, maxBytes = MAX_MESSAGE_BYTES): SpineMessage {
  const data = event.data as { networkId: string; groupId?: string };
  const attributes: SpineMessageAttributes = {
    type: event.type,
    networkId: attributeValue(data.networkId),
    path: attributeValue(event.subject),
    'ce-id': event.id,
    'ce-specversion': event.specversion,
  };
  if (event.subject !== data.networkId && data.groupId !== undefined) attributes.groupId = attributeValue(data.groupId);
  return {
    data: encodeToBuffer(event, { maxBytes, what: `${event.type} event` }),
    attributes,
    orderingKey: orderingKeyFor(event.subject),
  };
}

/** Decodes and validates a received message; the attributes must agree with the event inside. */
export function fromPubSubMessage(message: {
  data?: Buffer | Uint8Array | string | null;
  /** As received, or the `SpineMessageAttributes` of `toPubSubMessage`, so a message round-trips as it is. */
  attributes?: Readonly<Record<string, string | undefined>> | SpineMessageAttributes | null;
}): AnySpineEvent {
  const raw = message.data;
  if (raw === undefined || raw === null || raw.length === 0) throw new InvalidEventError('message has no data');
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'base64') : raw;
  let candidate: unknown;
  try {
    candidate = decode(bytes);
  } catch (error) {
    if (error instanceof CorruptDataError)
      throw new InvalidEventError('message data is not an encoded event', [error.message]);
    throw error;
  }
  const event = validateEvent(candidate);
  const attributes = (message.attributes ?? {}) as Readonly<Record<string, string | undefined>>;
  const data = event.data as { networkId: string; groupId?: string };
  const groupId = event.subject === data.networkId ? undefined : data.groupId;
  const mismatches: string[] = [];
  if (attributes.type !== undefined && attributes.type !== event.type)
    mismatches.push(`type attribute ${attributes.type} != ${event.type}`);
  if (attributes.networkId !== undefined && !matchesAttribute(attributes.networkId, data.networkId))
    mismatches.push(`networkId attribute ${attributes.networkId} != ${data.networkId}`);
  if (attributes.path !== undefined && !matchesAttribute(attributes.path, event.subject))
    mismatches.push(`path attribute ${attributes.path} != ${event.subject}`);
  if (attributes.groupId !== undefined && (groupId === undefined || !matchesAttribute(attributes.groupId, groupId)))
    mismatches.push(`groupId attribute ${attributes.groupId} != ${groupId ?? '(none: network-level event)'}`);
  if (attributes['ce-id'] !== undefined && attributes['ce-id'] !== event.id)
    mismatches.push(`ce-id attribute ${attributes['ce-id']} != ${event.id}`);
  if (mismatches.length) throw new InvalidEventError('message attributes do not match the event', mismatches);
  return event;
}
