/**
 * Draining a push subscription on the official Pub/Sub emulator into a real HTTP endpoint: what
 * a stopping local mesh does so nothing in flight is lost with the emulator.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PubSub } from '@google-cloud/pubsub';
import { drainPushSubscription } from '../../cli/drain';
import { createPubSubClient, createSubscriberClient } from '../../shared/mesh/clients';
import { loadSettings } from '../../shared/settings';
import { createMemoryLogger, useEmulators } from '../helpers/emulators';

const emulators = useEmulators({ storage: false, tasks: false });

interface Received {
  data: string;
  orderingKey?: string;
  attributes: Record<string, string>;
}

/** An endpoint that records what it is pushed and answers `status(body)`. */
async function endpoint(status: (received: Received) => number) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      const { message } = JSON.parse(text) as {
        message: { data: string; orderingKey?: string; attributes: Record<string, string> };
      };
      const entry = {
        data: Buffer.from(message.data, 'base64').toString('utf8'),
        attributes: message.attributes,
        ...(message.orderingKey ? { orderingKey: message.orderingKey } : {}),
      };
      const code = status(entry);
      if (code < 300) received.push(entry);
      res.writeHead(code).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('drainPushSubscription', () => {
  let pubsub: PubSub;
  const settings = () => loadSettings(emulators.env());

  beforeAll(() => {
    pubsub = createPubSubClient(settings());
  });
  afterAll(async () => {
    await pubsub.close();
  });

  /** An ordered push subscription to a port nothing listens on, holding `count` messages over two keys. */
  async function backlog(count: number) {
    const id = randomUUID().slice(0, 8);
    const [topic] = await pubsub.createTopic(`drain-${id}`);
    const [subscription] = await topic.createSubscription(`drain-${id}`, {
      enableMessageOrdering: true,
      pushConfig: { pushEndpoint: 'http://127.0.0.1:9/' },
      retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 2 } },
    });
    const ordered = topic;
    ordered.setPublishOptions({ messageOrdering: true });
    for (let i = 0; i < count; i++) {
      await ordered.publishMessage({
        data: Buffer.from(String(i)),
        orderingKey: i % 2 ? 'odd' : 'even',
        attributes: { index: String(i) },
      });
    }
    return subscription.name;
  }

  test('delivers every message once, in order per ordering key, with its attributes, then stops', async () => {
    const subscription = await backlog(20);
    const target = await endpoint(() => 204);
    const subscriber = createSubscriberClient(settings());
    try {
      const result = await drainPushSubscription({
        subscriber,
        subscription,
        endpoint: target.url,
        logger: createMemoryLogger(),
        pollMs: 100,
        quietPolls: 30,
      });
      expect(result).toEqual({ delivered: 20, failed: 0, timedOut: false });
      const byKey = (key: string) =>
        target.received.filter((entry) => entry.orderingKey === key).map((entry) => Number(entry.data));
      expect(byKey('even')).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
      expect(byKey('odd')).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
      expect(target.received.every((entry) => entry.attributes.index === entry.data)).toBe(true);
      // Nothing is left to pull.
      const [left] = await subscriber.pull({ subscription, maxMessages: 10, returnImmediately: true });
      expect(left.receivedMessages ?? []).toEqual([]);
    } finally {
      await subscriber.close();
      await target.close();
    }
  });

  test('retries a failing message, keeps the rest of its key behind it, and leaves it after maxAttempts', async () => {
    const subscription = await backlog(6);
    let tries = 0;
    // Message 2 (key "even") always fails; the "even" messages after it wait for it.
    const target = await endpoint((entry) => (entry.data === '2' ? (tries++, 500) : 204));
    const subscriber = createSubscriberClient(settings());
    const logger = createMemoryLogger();
    try {
      const result = await drainPushSubscription({
        subscriber,
        subscription,
        endpoint: target.url,
        logger,
        pollMs: 100,
        quietPolls: 30,
        maxAttempts: 3,
      });
      expect(result).toEqual({ delivered: 5, failed: 1, timedOut: false });
      expect(tries).toBe(3);
      const even = target.received.filter((entry) => entry.orderingKey === 'even').map((entry) => Number(entry.data));
      expect(even).toEqual([0, 4]);
      expect(target.received.filter((entry) => entry.orderingKey === 'odd').map((entry) => Number(entry.data))).toEqual(
        [1, 3, 5],
      );
    } finally {
      await subscriber.close();
      await target.close();
    }
  });
});
