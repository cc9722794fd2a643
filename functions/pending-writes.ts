import type { PubSub, Topic, v1 } from '@google-cloud/pubsub';
import { status as GrpcStatus } from '@grpc/grpc-js';

export interface PendingMessage {
  ackId: string;
  messageId: string;
  data: Buffer;
  attributes: Record<string, string>;
  /**
   * How many times Pub/Sub has delivered this message, this delivery included; counted only when
   * the subscription has a dead-letter policy (the pending one has), 0 otherwise.
   */
  deliveryAttempt?: number;
}

const PULL_BATCH = 1000;
/** The batch window a pending write arrived in; absent for `interval` and `manual` networks. */
export const WINDOW_ATTRIBUTE = 'spineWindow';
/**
 * The Pub/Sub message id of the contact-writes message a pending copy was made from, so the local
 * mesh's journal keeps that message not done until `persist` acknowledged its copy.
 */
export const SOURCE_MESSAGE_ATTRIBUTE = 'spineSourceMessageId';

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
    this.topic = pubsub.topic(topicName, { batching: { maxMessages: 500, maxMilliseconds: 1 } });
  }

  /**
   * Keeps a received message (its data as received, base64) until a flush; `window` marks a batch
   * window, `id` (the received message's id) names the source of the copy.
   */
  async add(
    message: { data: string; attributes: Record<string, string>; id?: string },
    window?: number,
  ): Promise<void> {
    const attributes = {
      ...message.attributes,
      ...(window === undefined ? {} : { [WINDOW_ATTRIBUTE]: String(window) }),
      ...(message.id ? { [SOURCE_MESSAGE_ATTRIBUTE]: message.id } : {}),
    };
    await this.topic.publishMessage({ data: Buffer.from(message.data, 'base64'), attributes });
  }

  /** Everything pending now, up to `max` messages; each stays leased to the caller until acked or released. */
  async pull(max = 20_000): Promise<PendingMessage[]> {
    const out: PendingMessage[] = [];
    while (out.length < max) {
      let received;
      try {
        [{ receivedMessages: received }] = await this.subscriber.pull(
          {
            subscription: this.subscriptionPath,
            maxMessages: Math.min(PULL_BATCH, max - out.length),
            returnImmediately: true,
          },
          { timeout: 10_000 },
        );
      } catch (error) {
        if ((error as { code?: number }).code === GrpcStatus.DEADLINE_EXCEEDED) break;
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
          deliveryAttempt: item.deliveryAttempt ?? 0,
        });
      }
    }
    return out;
  }

  async ack(ackIds: string[]): Promise<void> {
    await this.acknowledge(ackIds);
  }

  /**
   * Hands messages back at once, for the next flush. Pub/Sub counts this as a failed delivery:
   * it redelivers after the subscription's retry backoff and, after the dead-letter policy's
   * number of deliveries, dead-letters the message. For failures; see `defer` for messages
   * that were simply not the caller's to take.
   */
  async release(ackIds: string[]): Promise<void> {
    await this.handBack(ackIds);
  }

  /**
   * Leaves messages pending for a later flush (another window's, another network's), visible to
   * the very next pull. Not by handing them back: Pub/Sub counts every nack as a failed delivery,
   * holds the message back for the retry policy's backoff (1 s, doubling up to 60 s) and, after
   * the dead-letter policy's number of deliveries, dead-letters it, although nothing is wrong with
   * a write that merely belongs to a later flush. They are published again instead, as fresh
   * messages with the same data and attributes, and the old copies acknowledged. A crash between
   * the two leaves two copies: harmless, writes are applied at most once per writer and sequence.
   */
  async defer(messages: PendingMessage[]): Promise<void> {
    if (!messages.length) return;
    const outcomes = await Promise.allSettled(
      messages.map((m) => this.topic.publishMessage({ data: m.data, attributes: m.attributes })),
    );
    const published = messages.filter((_, index) => outcomes[index]!.status === 'fulfilled');
    const unpublished = messages.filter((_, index) => outcomes[index]!.status === 'rejected');
    // Copies published: the originals go. The rest are handed back as they are.
    if (published.length) await this.acknowledge(published.map((m) => m.ackId));
    if (unpublished.length) {
      await this.handBack(unpublished.map((m) => m.ackId)).catch(() => undefined);
      throw (outcomes.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult).reason;
    }
  }

  private async acknowledge(ackIds: string[]): Promise<void> {
    for (let i = 0; i < ackIds.length; i += PULL_BATCH) {
      await this.subscriber.acknowledge({
        subscription: this.subscriptionPath,
        ackIds: ackIds.slice(i, i + PULL_BATCH),
      });
    }
  }

  private async handBack(ackIds: string[]): Promise<void> {
    for (let i = 0; i < ackIds.length; i += PULL_BATCH) {
      await this.subscriber.modifyAckDeadline({
        subscription: this.subscriptionPath,
        ackIds: ackIds.slice(i, i + PULL_BATCH),
        ackDeadlineSeconds: 0,
      });
    }
  }

  async close(): Promise<void> {
    await this.topic.flush();
    await this.subscriber.close();
  }
}
