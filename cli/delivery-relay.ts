/**
 * The local mesh's push delivery, done by the mesh itself instead of the emulator's push loop
 * (which crashes for good when it forwards a dead letter): messages are pulled, POSTed to the
 * function in exactly the body the emulator would push, one at a time per ordering key in
 * order, retried with the subscription's backoff, dead-lettered after its maximum number of
 * attempts, and acknowledged only on a 2xx. It therefore knows when each message is done, and it
 * waits out a function outage of any length.
 */
import { Duration, type Message, type PubSub, type Subscription } from '@google-cloud/pubsub';
import type { Logger } from '../shared/log';

export interface RelayRoute {
  /** Short subscription name. */
  subscription: string;
  /** Full subscription path, as pushes name it. */
  subscriptionPath: string;
  /** The push URL (the function's base URL and the topic's path). */
  endpoint: string;
  minimumBackoffMs: number;
  maximumBackoffMs: number;
  /** Failed deliveries (the function answered, but not 2xx) before the message goes to `deadLetterTopic`. */
  maxDeliveryAttempts: number;
  /** Full path of the dead-letter topic; without one a message is retried forever. */
  deadLetterTopic?: string;
}

export interface DeliveryRelayOptions {
  /** Pulls from the emulator itself. */
  subscriber: PubSub;
  /** Publishes dead letters (through the journaling pass-through when there is one). */
  publisher: PubSub;
  projectId: string;
  routes: RelayRoute[];
  /** A message was delivered (or dead-lettered): the state holds it. */
  onDone?: (route: RelayRoute, messageId: string) => void;
  logger: Logger;
  /** Requests in flight per route. */
  concurrency?: number;
}

export interface RelayStats {
  delivered: number;
  deadLettered: number;
  failedAttempts: number;
  unreachableAttempts: number;
  inHand: number;
}

export interface DeliveryRelay {
  /** Retries waiting for their backoff go at once (the functions are back). */
  wake(): void;
  /** Resolves once nothing was received or held for `quietMs`; false when `timeoutMs` passed first. */
  idle(quietMs: number, timeoutMs: number): Promise<boolean>;
  /** Sends this route's pushes elsewhere (for a timing proxy); returns the undo. */
  redirect(subscription: string, endpoint: string): () => void;
  stats(): RelayStats;
  stop(): Promise<void>;
}

const REQUEST_TIMEOUT_MS = 120_000;
const DEFAULT_CONCURRENCY = 16;
/** While the function cannot be reached at all, retries come at least this often. */
const UNREACHABLE_MAX_BACKOFF_MS = 5_000;

/** The attributes Pub/Sub adds to a message it dead-letters. */
export function deadLetterAttributes(
  message: Message,
  route: RelayRoute,
  projectId: string,
  attempts: number,
): Record<string, string> {
  return {
    ...message.attributes,
    CloudPubSubDeadLetterSourceDeliveryCount: String(attempts),
    CloudPubSubDeadLetterSourceSubscription: route.subscription,
    CloudPubSubDeadLetterSourceSubscriptionProject: projectId,
    CloudPubSubDeadLetterSourceTopicPublishTime: message.publishTime.toISOString(),
  };
}

/** The body the emulator pushes: the Functions Framework turns it into a CloudEvent. */
export function pushBody(message: Message, subscriptionPath: string): string {
  return JSON.stringify({
    message: {
      data: message.data.toString('base64'),
      attributes: message.attributes,
      messageId: message.id,
      publishTime: message.publishTime.toISOString(),
      ...(message.orderingKey ? { orderingKey: message.orderingKey } : {}),
    },
    subscription: subscriptionPath,
  });
}

type Outcome = 'ok' | 'failed' | 'unreachable';

class Lane {
  /** Messages of one ordering key with their arrival numbers, oldest first. */
  readonly queue: Array<{ message: Message; arrival: number }> = [];
  running = false;
}

/** Lanes waiting for a request slot, served oldest head message first. */
class SlotQueue {
  private readonly waiting: Array<{ arrival: number; grant: () => void }> = [];

  /** Waits behind every lane whose head message arrived earlier. */
  wait(arrival: number): Promise<void> {
    return new Promise((grant) => {
      let low = 0;
      let high = this.waiting.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (this.waiting[middle]!.arrival < arrival) low = middle + 1;
        else high = middle;
      }
      this.waiting.splice(low, 0, { arrival, grant });
    });
  }

  grantNext(): void {
    this.waiting.shift()?.grant();
  }
}

export function startDeliveryRelay(options: DeliveryRelayOptions): DeliveryRelay {
  const { logger } = options;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const stats = { delivered: 0, deadLettered: 0, failedAttempts: 0, unreachableAttempts: 0 };
  let lastActivity = Date.now();
  let inHand = 0;
  let stopped = false;
  const sleepers = new Set<() => void>();
  const subscriptions: Subscription[] = [];
  const redirects = new Map<string, string>();

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });

  async function post(route: RelayRoute, message: Message): Promise<Outcome> {
    try {
      const response = await fetch(redirects.get(route.subscription) ?? route.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: pushBody(message, route.subscriptionPath),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      // As the emulator: these acknowledge, anything else (202 included) is a failed delivery.
      return [102, 200, 201, 203, 204].includes(response.status) ? 'ok' : 'failed';
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code;
      return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' ? 'unreachable' : 'failed';
    }
  }

  /** One message until it is done: delivered, or dead-lettered after its attempts. */
  async function deliver(route: RelayRoute, message: Message): Promise<void> {
    let attempts = 0;
    let backoffMs = route.minimumBackoffMs;
    for (;;) {
      if (stopped) return;
      const outcome = await post(route, message);
      lastActivity = Date.now();
      if (outcome === 'ok') {
        message.ack();
        stats.delivered++;
        options.onDone?.(route, message.id);
        return;
      }
      if (outcome === 'failed') {
        attempts++;
        stats.failedAttempts++;
        if (route.deadLetterTopic && attempts >= route.maxDeliveryAttempts) {
          try {
            await options.publisher.topic(route.deadLetterTopic).publishMessage({
              data: message.data,
              attributes: deadLetterAttributes(message, route, options.projectId, attempts),
            });
            message.ack();
            stats.deadLettered++;
            logger.warn('message dead-lettered after repeated failed deliveries', {
              subscription: route.subscription,
              messageId: message.id,
              attempts,
            });
            options.onDone?.(route, message.id);
            return;
          } catch (error) {
            logger.error('could not publish a dead letter; the message is tried again', {
              subscription: route.subscription,
              messageId: message.id,
              error,
            });
          }
        }
      } else {
        stats.unreachableAttempts++;
      }
      // A function that cannot be reached is not the message's fault: no attempt counted, retried soon.
      const wait = outcome === 'unreachable' ? Math.min(backoffMs, UNREACHABLE_MAX_BACKOFF_MS) : backoffMs;
      if (outcome === 'failed' || attempts === 0)
        logger.debug('delivery failed; retrying', {
          subscription: route.subscription,
          messageId: message.id,
          outcome,
          attempts,
          waitMs: wait,
        });
      backoffMs = Math.min(backoffMs * 2, route.maximumBackoffMs);
      await sleep(wait);
    }
  }

  for (const route of options.routes) {
    const lanes = new Map<string, Lane>();
    const seen = new Set<string>();
    // Slots go to the lane whose next message arrived first, so across ordering keys messages are
    // delivered in about the order they were published, as the emulator pushes them: a flush
    // request published after a burst of writes does not overtake the burst's later messages.
    const slots = new SlotQueue();
    let arrivals = 0;
    let running = 0;
    const slot = async (arrival: number) => {
      while (running >= concurrency) await slots.wait(arrival);
      running++;
    };
    const release = () => {
      running--;
      slots.grantNext();
    };
    const drainLane = async (key: string, lane: Lane) => {
      lane.running = true;
      while (lane.queue.length && !stopped) {
        const { message, arrival } = lane.queue[0]!;
        await slot(arrival);
        try {
          await deliver(route, message);
        } finally {
          release();
        }
        lane.queue.shift();
        // Forgotten once done, so a later redelivery (an ack lost with a crash) is delivered again: harmless.
        seen.delete(message.id);
        inHand--;
      }
      lane.running = false;
      if (lane.queue.length === 0) lanes.delete(key);
    };
    const subscription = options.subscriber.subscription(route.subscriptionPath, {
      flowControl: { maxMessages: 2_000, allowExcessMessages: false },
      // Held as long as the function needs (an outage of any length): the lease is kept extended.
      maxExtensionTime: Duration.from({ hours: 7 * 24 }),
      batching: { maxMilliseconds: 20 },
    });
    subscription.on('message', (message: Message) => {
      lastActivity = Date.now();
      // A redelivery of a message still in hand (its lease lapsed) is already being delivered.
      if (seen.has(message.id)) return;
      seen.add(message.id);
      inHand++;
      const key = message.orderingKey || `\u0000${message.id}`;
      let lane = lanes.get(key);
      if (!lane) lanes.set(key, (lane = new Lane()));
      lane.queue.push({ message, arrival: ++arrivals });
      if (!lane.running)
        void drainLane(key, lane).catch((error: unknown) =>
          logger.error('relay lane failed', { subscription: route.subscription, error }),
        );
    });
    subscription.on('error', (error: Error) =>
      logger.error('relay subscription error', { subscription: route.subscription, error }),
    );
    subscriptions.push(subscription);
  }

  logger.info('delivery relay started', { routes: options.routes.map((route) => route.subscription), concurrency });
  return {
    wake() {
      for (const wake of [...sleepers]) wake();
    },
    async idle(quietMs, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (inHand === 0 && Date.now() - lastActivity >= quietMs) return true;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return false;
    },
    redirect(subscription, endpoint) {
      redirects.set(subscription, endpoint);
      return () => redirects.delete(subscription);
    },
    stats: () => ({ ...stats, inHand }),
    async stop() {
      stopped = true;
      for (const wake of [...sleepers]) wake();
      await Promise.all(subscriptions.map((subscription) => subscription.close().catch(() => undefined)));
    },
  };
}
