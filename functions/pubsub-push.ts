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

export function pushedMessage(cloudEvent: CloudEvent<PubSubPushData>): PushedMessage {
  const message = cloudEvent.data?.message;
  if (!message) throw new InvalidEventError('push request carries no Pub/Sub message');
  return { id: message.messageId ?? cloudEvent.id, data: message.data ?? '', attributes: message.attributes ?? {} };
}
