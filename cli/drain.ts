import type { v1 } from '@google-cloud/pubsub';
import type { Logger } from '../shared/log';

type SubscriberClient = InstanceType<typeof v1.SubscriberClient>;

export interface DrainOptions {
  subscriber: SubscriberClient;
  /** Full subscription path. */
  subscription: string;
  /** Where the subscription pushes (the function's URL). */
  endpoint: string;
  logger: Logger;
  /** Consecutive empty pulls, `pollMs` apart, that count as drained. */
  quietPolls?: number;
  pollMs?: number;
  /** Attempts per message before it is left in the subscription (and logged). */
  maxAttempts?: number;
  /** Give up after this long. */
  timeoutMs?: number;
}

export interface DrainResult {
  delivered: number;
  /** Messages that kept failing and were left behind (lost when the emulator stops). */
  failed: number;
  timedOut: boolean;
}

/**
 * Empties a push subscription before the Pub/Sub emulator (which keeps nothing) stops: the
 * subscription becomes a pull subscription, so the emulator starts no new pushes, and what is
 * left is pulled and posted to the function as the emulator would push it, acked on success.
 * Per ordering key the pulled order is kept.
 */
export async function drainPushSubscription(options: DrainOptions): Promise<DrainResult> {
  const { subscriber, subscription, endpoint, logger } = options;
  const quietPolls = options.quietPolls ?? 3;
  const pollMs = options.pollMs ?? 300;
  const maxAttempts = options.maxAttempts ?? 5;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  await subscriber.modifyPushConfig({ subscription, pushConfig: {} });

  const attempts = new Map<string, number>();
  const result: DrainResult = { delivered: 0, failed: 0, timedOut: false };
  let quiet = 0;
  while (quiet < quietPolls) {
    if (Date.now() > deadline) {
      result.timedOut = true;
      break;
    }
    const [response] = await subscriber.pull({ subscription, maxMessages: 100, returnImmediately: true });
    const received = response.receivedMessages ?? [];
    if (received.length === 0) {
      quiet++;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      continue;
    }
    quiet = 0;
    const failedKeys = new Set<string>();
    for (const { ackId, message } of received) {
      if (!ackId || !message) continue;
      const key = message.orderingKey ?? '';
      const id = message.messageId ?? ackId;
      // Once a message of a key failed, later ones of that key wait for its redelivery, untried.
      if (key && failedKeys.has(key)) {
        await subscriber.modifyAckDeadline({ subscription, ackIds: [ackId], ackDeadlineSeconds: 0 });
        continue;
      }
      const ok = await push(endpoint, subscription, message);
      if (ok) {
        await subscriber.acknowledge({ subscription, ackIds: [ackId] });
        attempts.delete(id);
        result.delivered++;
        continue;
      }
      if (key) failedKeys.add(key);
      const tries = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, tries);
      if (tries >= maxAttempts) {
        logger.error('message could not be delivered while draining; it is left behind', {
          subscription,
          messageId: id,
          attempts: tries,
        });
        result.failed++;
        await subscriber.acknowledge({ subscription, ackIds: [ackId] });
      } else {
        await subscriber.modifyAckDeadline({ subscription, ackIds: [ackId], ackDeadlineSeconds: 0 });
      }
    }
  }
  return result;
}

async function push(endpoint: string, subscription: string, message: v1PulledMessage): Promise<boolean> {
  const body = {
    message: {
      data: message.data ? Buffer.from(message.data).toString('base64') : '',
      attributes: message.attributes ?? {},
      messageId: message.messageId,
      publishTime: toIso(message.publishTime),
      ...(message.orderingKey ? { orderingKey: message.orderingKey } : {}),
    },
    subscription,
  };
  try {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** The fields of a pulled message that a push carries. */
interface v1PulledMessage {
  data?: Uint8Array | string | null;
  attributes?: Record<string, string> | null;
  messageId?: string | null;
  publishTime?: { seconds?: number | string | Long | null; nanos?: number | null } | null;
  orderingKey?: string | null;
}
type Long = { toString(): string };

function toIso(timestamp: v1PulledMessage['publishTime']): string {
  if (!timestamp) return new Date().toISOString();
  const millis = Number(String(timestamp.seconds ?? 0)) * 1000 + Math.floor((timestamp.nanos ?? 0) / 1e6);
  return new Date(millis).toISOString();
}
