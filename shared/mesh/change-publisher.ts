import type { PubSub, Topic } from '@google-cloud/pubsub';
import { attributeValue, createEvent, encodePubSubMessage } from '../events';
import { EventType, type AnySpineEvent, type GroupChangedData, type NetworkChangedData } from '../events/types';

export type Change =
  | { type: typeof EventType.GroupChanged; data: GroupChangedData }
  | { type: typeof EventType.NetworkChanged; data: NetworkChangedData };

/** Attributes of group-change messages that writers match their acknowledgements by. */
export const CHANGE_ATTRIBUTES = { writer: 'writerId', cause: 'causeId', batch: 'batch', bundle: 'bundle' } as const;

/**
 * Announces applied writes on the group-changes topic, ordered per path. Each message carries
 * the cause's `writerId` and `causeId` as attributes: writers wait for their own writes by them.
 * @internal The functions' part; exported for the project's own tests.
 */
export class ChangePublisher {
  private readonly topic: Topic;

  constructor(
    pubsub: PubSub,
    topicName: string,
    private readonly source = '//superspine/functions/materialize',
  ) {
    this.topic = pubsub.topic(topicName, { messageOrdering: true, batching: { maxMessages: 100, maxMilliseconds: 1 } });
  }

  async publish(changes: Change[]): Promise<void> {
    await Promise.all(
      changes.map(async (change) => {
        const event = createEvent(change.type, change.data as never, { source: this.source }) as AnySpineEvent;
        const message = encodePubSubMessage(event);
        const attributes: Record<string, string> = {
          ...message.attributes,
          [CHANGE_ATTRIBUTES.cause]: change.data.causeId,
        };
        if (change.data.writerId) attributes[CHANGE_ATTRIBUTES.writer] = attributeValue(change.data.writerId);
        // Writers find the writes a change covers in its data: a bundle's are all its writer's
        // (routed by the writer attribute), a batch's belong to many writers.
        if (change.type === EventType.GroupChanged && change.data.causes)
          attributes[change.data.writerId ? CHANGE_ATTRIBUTES.bundle : CHANGE_ATTRIBUTES.batch] = 'true';
        try {
          await this.topic.publishMessage({ data: message.data, attributes, orderingKey: message.orderingKey });
        } catch (error) {
          this.topic.resumePublishing(message.orderingKey);
          throw error;
        }
      }),
    );
  }

  async close(): Promise<void> {
    await this.topic.flush();
  }
}
