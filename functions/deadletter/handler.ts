import type { CloudEvent } from '@google-cloud/functions-framework';
import type { Logger } from '../../shared/log';
import type { DeadLetterStore } from '../../shared/mesh/dead-letters';
import { pushedMessage, type PubSubPushData } from '../pubsub-push';

/** Stores what Pub/Sub dead-lettered after too many failed deliveries, with the reason. */
export function createDeadLetterHandler(deps: { deadLetters: DeadLetterStore; logger: Logger }) {
  return async function deadletter(cloudEvent: CloudEvent<PubSubPushData>): Promise<void> {
    const message = pushedMessage(cloudEvent);
    const attempts = Number(message.attributes.CloudPubSubDeadLetterSourceDeliveryCount ?? NaN);
    const subscription = message.attributes.CloudPubSubDeadLetterSourceSubscription;
    const stored = await deps.deadLetters.record({
      id: message.id,
      reason: `not acknowledged after ${Number.isFinite(attempts) ? attempts : 'the maximum number of'} delivery attempts${subscription ? ` on ${subscription}` : ''}`,
      source: 'delivery-attempts',
      ...(subscription ? { subscription } : {}),
      ...(Number.isFinite(attempts) ? { deliveryAttempts: attempts } : {}),
      attributes: message.attributes,
      data: message.data,
      orderingKey: message.attributes.path,
    });
    deps.logger.warn('dead letter stored', { id: stored.id, reason: stored.reason, path: message.attributes.path });
  };
}
