import type { CloudEvent } from '@google-cloud/functions-framework';
import { InvalidEventError } from '../shared/errors';

/** What the Functions Framework hands a CloudEvent function fed by a Pub/Sub push subscription. */
export interface PubSubPushData {
  message?: { data?: string; attributes?: Record<string, string>; messageId?: string; publishTime?: string };
  subscription?: string;
}

export interface PushedMessage {
  id: string;
  /** Base64, as pushed. */
  data: string;
  attributes: Record<string, string>;
}

/**
 * The message of a push, as a CloudEvent or, for a message with empty data (which the Functions
 * Framework passes through unconverted), as the raw push body.
 */
export function pushedMessage(cloudEvent: CloudEvent<PubSubPushData>): PushedMessage {
  const raw = cloudEvent as unknown as PubSubPushData;
  const message =
    cloudEvent.data?.message ?? (raw.message && typeof raw.message === 'object' ? raw.message : undefined);
  if (!message) throw new InvalidEventError('push request carries no Pub/Sub message');
  return { id: message.messageId ?? cloudEvent.id, data: message.data ?? '', attributes: message.attributes ?? {} };
}
