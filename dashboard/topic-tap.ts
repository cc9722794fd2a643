import type { CreateSubscriptionOptions, Message, PubSub, Subscription } from '@google-cloud/pubsub';
import type { Logger } from '../shared/log';
import { subscriptionMetadata } from '../shared/provision';
import type { Topology } from '../shared/topology';
import { status as GrpcStatus } from '@grpc/grpc-js';

/** A subscription of the dashboard's own on one topic, read by streaming pull and removed on close. */
export interface TopicTap {
  readonly name: string;
  close(): Promise<void>;
}

/**
 * Creates `name` on `topic` with the settings of the topology's client subscriptions (they
 * expire after a day idle, so a crashed dashboard leaves nothing for long), without ordering
 * (the page only watches) and without a dead-letter policy (a watcher never refuses a message).
 * Every message is handed to `onMessage` and acknowledged.
 */
export async function openTopicTap(
  pubsub: PubSub,
  topology: Topology,
  options: { topic: string; name: string; logger: Logger; onMessage(message: Message): void },
): Promise<TopicTap> {
  const { deadLetterPolicy: _none, ...settings } = topology.clientSubscriptions;
  const metadata = subscriptionMetadata(topology, {
    ...settings,
    name: options.name,
    topic: options.topic,
    enableMessageOrdering: false,
  });
  const [subscription] = await pubsub.topic(options.topic).createSubscription(options.name, {
    ...(metadata as CreateSubscriptionOptions),
    flowControl: { maxMessages: 500, allowExcessMessages: true },
  });
  subscription.on('message', (message: Message) => {
    try {
      options.onMessage(message);
    } catch (error) {
      options.logger.warn('dashboard could not show a message', {
        subscription: options.name,
        messageId: message.id,
        error,
      });
    } finally {
      message.ack();
    }
  });
  subscription.on('error', (error) =>
    options.logger.error('dashboard subscription failed', { subscription: options.name, error }),
  );
  return {
    name: options.name,
    close: () => removeSubscription(subscription, options.logger),
  };
}

async function removeSubscription(subscription: Subscription, logger: Logger): Promise<void> {
  try {
    await subscription.close();
    await subscription.delete();
  } catch (error) {
    if ((error as { code?: number }).code !== GrpcStatus.NOT_FOUND)
      logger.warn('could not delete dashboard subscription', { subscription: subscription.name, error });
  }
}
