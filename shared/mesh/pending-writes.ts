import type { PubSub, Topic, v1 } from '@google-cloud/pubsub';

export interface PendingMessage {
  ackId: string;
  messageId: string;
  data: Buffer;
  attributes: Record<string, string>;
}

const PULL_BATCH = 1000;
/** The batch window a pending write arrived in; absent for `interval` and `manual` networks. */
export const WINDOW_ATTRIBUTE = 'spineWindow';
const DEADLINE_EXCEEDED = 4;

/**
 * The durable buffer of batched writes: a topic that materialize forwards batched contact
 * writes to, and a pull subscription that `persist` drains, acknowledging messages only once
 * their writes are in the state. Nothing acknowledged is lost; nothing unacknowledged is either.
 */
export class PendingWrites {
  private readonly topic: Topic;

  constructor(
    pubsub: PubSub,
    topicName: string,
    private readonly subscriber: InstanceType<typeof v1.SubscriberClient>,
    private readonly subscriptionPath: string,
  ) {
    this.topic = pubsub.topic(topicName, { batching: { maxMessages: 500, maxMilliseconds: 5 } });
  }

  /** Keeps a received message (its data as received, base64) until a flush; `window` marks a batch window. */
  async add(message: { data: string; attributes: Record<string, string> }, window?: number): Promise<void> {
    const attributes = window === undefined ? message.attributes : { ...message.attributes, [WINDOW_ATTRIBUTE]: String(window) };
    await this.topic.publishMessage({ data: Buffer.from(message.data, 'base64'), attributes });
  }

  /** Everything pending now, up to `max` messages; each stays leased to the caller until acked or released. */
  async pull(max = 20_000): Promise<PendingMessage[]> {
    const out: PendingMessage[] = [];
    while (out.length < max) {
      let received;
      try {
        [{ receivedMessages: received }] = await this.subscriber.pull(
          { subscription: this.subscriptionPath, maxMessages: Math.min(PULL_BATCH, max - out.length), returnImmediately: true },
          { timeout: 10_000 },
        );
      } catch (error) {
        if ((error as { code?: number }).code === DEADLINE_EXCEEDED) break;
        throw error;
      }
      if (!received || received.length === 0) break;
      for (const item of received) {
        if (!item.ackId || !item.message) continue;
        out.push({
          ackId: item.ackId,
          messageId: item.message.messageId ?? '',
          data: Buffer.from(item.message.data ?? new Uint8Array()),
          attributes: (item.message.attributes as Record<string, string> | null) ?? {},
        });
      }
    }
    return out;
  }

  async ack(ackIds: string[]): Promise<void> {
    for (let i = 0; i < ackIds.length; i += PULL_BATCH) {
      await this.subscriber.acknowledge({ subscription: this.subscriptionPath, ackIds: ackIds.slice(i, i + PULL_BATCH) });
    }
  }

  /** Hands messages back at once, for the next flush. */
  async release(ackIds: string[]): Promise<void> {
    for (let i = 0; i < ackIds.length; i += PULL_BATCH) {
      await this.subscriber.modifyAckDeadline({ subscription: this.subscriptionPath, ackIds: ackIds.slice(i, i + PULL_BATCH), ackDeadlineSeconds: 0 });
    }
  }

  async close(): Promise<void> {
    await this.topic.flush();
    await this.subscriber.close();
  }
}
