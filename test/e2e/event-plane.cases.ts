/**
 * The event plane end to end: the official Pub/Sub emulator pushing to the functions (a real
 * child process, over HTTP), clients through SpineStorage. One set of cases, run against each
 * state store the functions can materialize into (event-plane.test.ts: Cloud Storage on the
 * Storage emulator; test/postgres/event-plane.postgres.test.ts: PostgreSQL).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Topic } from '@google-cloud/pubsub';
import { canonicalize } from '../../shared/codec';
import {
  createEvent,
  encode,
  EventType,
  growArray,
  growSet,
  MemoryStorage,
  type AnySpineEvent,
  type GroupState,
  type NetworkStorage,
} from 'super-spine';
import { HybridLogicalClock } from '../../shared/hlc';
import { toPubSubMessage } from '../../shared/events';
import { eventually } from 'super-spine/testing';
import { ContentStore, MAX_INLINE_CONTENT_BYTES } from '../../shared/mesh/content-store';
import { DeadLetterStore } from '../../shared/mesh/dead-letters';
import { TimeoutError } from '../../shared/errors';
import { SpineStorage } from '../../shared/mesh/spine-storage';
import { MATERIALIZE_MAX_DELIVERY_ATTEMPTS } from '../../shared/topology';
import type { MeshHandle } from '../helpers/mesh';

/** Registers the event-plane cases against `mesh`, a running local mesh (see useLocalMesh). */
export function describeEventPlane(mesh: MeshHandle): void {
  function writesTopic(): Topic {
    return mesh.pubsub.topic(mesh.mesh.topology.topics.contactWrites.name, { messageOrdering: true });
  }

  async function publishEvent(topic: Topic, event: AnySpineEvent): Promise<void> {
    const message = toPubSubMessage(event);
    await topic.publishMessage({
      data: message.data,
      attributes: { ...message.attributes },
      orderingKey: message.orderingKey,
    });
  }

  function shuffle<T>(items: T[], random: () => number): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  /** A small deterministic generator, so a failure can be replayed with the same seed. */
  function seededRandom(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (state * 1664525 + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
  }

  describe('materialize', () => {
    it('converges 4 writers x 500 writes over 20 groups, with duplicates and reordering, to an independent model', async () => {
      const network = `converge-${randomUUID().slice(0, 8)}`;
      const random = seededRandom(20261121);
      const writers = 4;
      const writesPerWriter = 500;
      const groups = Array.from({ length: 20 }, (_, i) => `group-${i}`);
      const contactsPerGroup = ['last-a', 'last-b', 'set-a', 'set-b'];

      // The model, computed from the writes alone: newest stamp wins, sets are unions.
      const newest = new Map<string, { stamp: string; content: unknown }>();
      const unions = new Map<string, Set<string>>();
      const perWriter: AnySpineEvent[][] = [];
      let fakeTime = 1_800_000_000_000;
      for (let w = 0; w < writers; w++) {
        // Clocks that drift and collide: ties are broken by writer id, never by arrival.
        const clock = new HybridLogicalClock(`writer-${w}`, () => fakeTime + Math.floor(random() * 50));
        const events: AnySpineEvent[] = [];
        for (let seq = 1; seq <= writesPerWriter; seq++) {
          const groupId = groups[Math.floor(random() * groups.length)]!;
          const contactId = contactsPerGroup[Math.floor(random() * contactsPerGroup.length)]!;
          const key = `${groupId}/${contactId}`;
          const stamp = clock.tick();
          const merge = contactId.startsWith('set');
          const token = `w${w}-${seq}`;
          const content = merge ? growSet([token]) : { writer: w, seq };
          events.push(
            createEvent(
              EventType.ContactWritten,
              {
                networkId: network,
                groupId,
                contactId,
                content,
                ...(merge ? { blendMode: 'merge' as const } : {}),
                stamp,
                writerId: `writer-${w}`,
                seq,
              },
              { source: `//test/writer-${w}` },
            ),
          );
          if (merge) unions.set(key, new Set([...(unions.get(key) ?? []), token]));
          else if (!newest.has(key) || newest.get(key)!.stamp < stamp) newest.set(key, { stamp, content });
        }
        fakeTime += 7;
        perWriter.push(events);
      }

      // Each writer publishes its events shuffled, with about one in ten published twice.
      const topic = writesTopic();
      await Promise.all(
        perWriter.map(async (events) => {
          const withDuplicates = [...events, ...events.filter(() => random() < 0.1)];
          for (const event of shuffle(withDuplicates, random)) await publishEvent(topic, event);
        }),
      );

      const state = mesh.client().state;
      const snapshot = async () => {
        const out = new Map<string, unknown>();
        for (const groupId of groups) {
          const group = await state.loadGroupState(network, groupId);
          for (const [contactId, contact] of group?.contacts ?? []) out.set(`${groupId}/${contactId}`, contact.content);
        }
        return out;
      };
      const expected = new Map<string, unknown>([...newest].map(([key, { content }]) => [key, content]));
      for (const [key, tokens] of unions) expected.set(key, growSet(tokens));

      await eventually(
        async () => {
          const actual = await snapshot();
          expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
          for (const [key, value] of expected) expect(canonicalize(actual.get(key))).toBe(canonicalize(value));
        },
        { timeoutMs: 150_000, intervalMs: 1_000 },
      );
    });

    it('stores content over 256 KB once by hash and materializes it from the reference', async () => {
      const network = `large-${randomUUID().slice(0, 8)}`;
      const spine = mesh.client();
      const big = {
        blob: 'x'.repeat(MAX_INLINE_CONTENT_BYTES + 10_000),
        list: Array.from({ length: 100 }, (_, i) => i),
      };
      await spine.saveContactContent(network, 'g', 'big', big, { wait: 'materialized' });
      expect(await spine.loadContactContent(network, 'g', 'big')).toEqual(big);
      const sha256 = createHash('sha256').update(encode(big)).digest('hex');
      const [exists] = await mesh.storage.bucket(mesh.mesh.settings.bucket).file(`content/${sha256}`).exists();
      expect(exists).toBe(true);
    });
  });

  describe('bundles', () => {
    /** The items of a grow-array contact, sorted; a write applied twice shows as a repeated item. */
    async function itemsOf(
      storage: NetworkStorage,
      network: string,
      group: string,
      contact: string,
    ): Promise<number[]> {
      const content = (await storage.loadContactContent(network, group, contact)) as { items?: number[] } | null;
      return [...(content?.items ?? [])].sort((a, b) => a - b);
    }

    it('sends a lone write at once, gathers the writes made meanwhile, and acknowledges every write of a bundle', async () => {
      const network = `bundle-${randomUUID().slice(0, 8)}`;
      const spine = mesh.client();
      await spine.initialize();
      const before = spine.stats();
      await spine.saveContactContent(network, 'g', 'alone', 'first', { wait: 'materialized' });
      expect(spine.stats().contactWriteEvents - before.contactWriteEvents).toBe(1);
      expect(spine.stats().bundles).toBe(before.bundles);

      const start = spine.stats();
      // Each write waits for its own acknowledgement: it resolves only once it is materialized.
      await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          spine.saveContactContent(network, 'g', `log-${i % 10}`, growArray([i]), {
            blendMode: 'merge',
            wait: 'materialized',
          }),
        ),
      );
      const end = spine.stats();
      expect(end.contactWrites - start.contactWrites).toBe(300);
      expect(end.bundles - start.bundles).toBeGreaterThan(0);
      expect(end.contactWriteEvents - start.contactWriteEvents).toBeLessThanOrEqual(30);
      for (let k = 0; k < 10; k++) {
        expect(await itemsOf(spine, network, 'g', `log-${k}`)).toEqual(
          Array.from({ length: 30 }, (_, j) => j * 10 + k),
        );
      }
    });

    it('applies a redelivered bundle once, and a bundle whose writes were partly applied before only for the rest', async () => {
      const network = `redeliver-${randomUUID().slice(0, 8)}`;
      const clock = new HybridLogicalClock('bundler.test');
      const writes = Array.from({ length: 40 }, (_, i) => ({
        id: `w-${i}`,
        contactId: `log-${i % 4}`,
        content: growArray([i]),
        blendMode: 'merge' as const,
        seq: i + 1,
        stamp: clock.tick(),
      }));
      const bundle = (items: typeof writes) =>
        createEvent(
          EventType.ContactsWritten,
          { networkId: network, groupId: 'g', writerId: 'bundler.test', writes: items },
          { source: '//test/bundler' },
        );
      const topic = writesTopic();
      // The first half first (a crash after it was applied), then the whole bundle twice: a redelivery and a retry.
      await publishEvent(topic, bundle(writes.slice(0, 20)));
      await publishEvent(topic, bundle(writes));
      await publishEvent(topic, bundle(writes));
      // A marker behind them on the same ordering key: once it is in, so are they.
      await publishEvent(
        topic,
        createEvent(
          EventType.ContactWritten,
          {
            networkId: network,
            groupId: 'g',
            contactId: 'marker',
            content: 1,
            writerId: 'marker.test',
            seq: 1,
            stamp: new HybridLogicalClock('marker.test').tick(),
          },
          { source: '//test/marker' },
        ),
      );
      const reader = mesh.client();
      await eventually(async () => expect(await reader.loadContactContent(network, 'g', 'marker')).toBe(1), {
        timeoutMs: 30_000,
      });
      for (let k = 0; k < 4; k++)
        expect(await itemsOf(reader, network, 'g', `log-${k}`)).toEqual(
          Array.from({ length: 10 }, (_, j) => j * 4 + k),
        );
    });

    it('loses and repeats no write of a bundle when the functions process is killed mid-stream', async () => {
      const network = `bundle-crash-${randomUUID().slice(0, 8)}`;
      const spine = mesh.client({ flushTimeoutMs: 150_000 });
      await spine.initialize();
      const groups = 6;
      const waves = 12;
      const perWave = 120;
      let accepted = 0;
      const writing = (async () => {
        for (let wave = 0; wave < waves; wave++) {
          // A wave is issued at once, so its writes travel in bundles.
          await Promise.all(
            Array.from({ length: perWave }, (_, i) => {
              const n = wave * perWave + i;
              return spine
                .saveContactContent(network, `g${n % groups}`, 'log', growArray([n]), { blendMode: 'merge' })
                .then(() => void (accepted += 1));
            }),
          );
        }
      })();
      await eventually(() => expect(accepted).toBeGreaterThan((waves * perWave) / 4), {
        timeoutMs: 60_000,
        intervalMs: 5,
      });
      await mesh.mesh.restartFunctions({ crash: true });
      await writing;
      await spine.flush();
      expect(spine.stats().bundles).toBeGreaterThan(0);
      for (let g = 0; g < groups; g++) {
        expect(await itemsOf(spine, network, `g${g}`, 'log')).toEqual(
          Array.from({ length: (waves * perWave) / groups }, (_, j) => j * groups + g),
        );
      }
    });

    it("materializes 10,000 writes over 100 groups within flush()'s default timeout, and a heartbeat sent behind them reaches the health check", async () => {
      const network = `ten-k-${randomUUID().slice(0, 8)}`;
      const spine = mesh.client();
      await spine.initialize();
      const agent = `agent-${randomUUID().slice(0, 8)}`;
      const writes = Array.from({ length: 10_000 }, (_, i) =>
        spine.saveContactContent(network, `g${i % 100}`, `c${Math.floor(i / 100) % 20}`, { i }),
      );
      await spine.heartbeat(agent, 'busy');
      await Promise.all(writes);
      // The client's default timeout (30 s): the backlog of the old design took minutes.
      await spine.flush();
      for (let g = 0; g < 100; g += 11) {
        const group = await spine.loadGroupState(network, `g${g}`);
        expect(group?.contacts.size).toBe(20);
        // The last of the 100 writes to each contact won: i = 9900 + 100 * ... for contact c19.
        expect(group?.contacts.get('c19')?.content).toEqual({ i: 9900 + g });
      }
      const response = await fetch(`${mesh.mesh.functions.urls.health}/`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      });
      const report = (await response.json()) as {
        checks: { agents: Array<{ agentId: string; online: boolean; status: string }> };
      };
      expect(report.checks.agents.find((a) => a.agentId === agent)).toMatchObject({ online: true, status: 'busy' });
    });

    it('ends in the state of the same calls made on MemoryStorage, with bundles mixed with deletes and whole-group saves', async () => {
      const network = `mixed-${randomUUID().slice(0, 8)}`;
      const random = seededRandom(20261205);
      const spine = mesh.client({ flushTimeoutMs: 120_000 });
      const model = new MemoryStorage();
      await Promise.all([spine.initialize(), model.initialize()]);
      const groups = ['a', 'b', 'c'];
      const calls: Array<(storage: NetworkStorage) => Promise<void>> = [];
      for (let i = 0; i < 600; i++) {
        const groupId = groups[Math.floor(random() * groups.length)]!;
        const roll = random();
        if (roll < 0.02) calls.push((storage) => storage.deleteGroup(network, groupId));
        else if (roll < 0.04) {
          const saved: GroupState = {
            group: {
              id: groupId,
              name: `saved ${i}`,
              contactIds: ['kept'],
              wireIds: [],
              subgroupIds: [],
              boundaryContactIds: [],
            },
            contacts: new Map([
              ['kept', { id: 'kept', groupId, blendMode: 'accept-last' as const, content: { savedAt: i } }],
            ]),
            wires: new Map(),
          };
          calls.push((storage) => storage.saveGroupState(network, groupId, saved));
        } else if (roll < 0.5)
          calls.push((storage) => storage.saveContactContent(network, groupId, `last-${i % 5}`, { i }));
        else
          calls.push((storage) =>
            storage.saveContactContent(network, groupId, `set-${i % 3}`, growSet([`item-${i}`]), {
              blendMode: 'merge',
            }),
          );
      }
      // Issued without waiting, so contact writes gather into bundles between the deletes and saves.
      await Promise.all(calls.map((call) => call(spine)));
      await spine.flush();
      for (const call of calls) await call(model);
      expect(spine.stats().bundles).toBeGreaterThan(0);

      for (const groupId of groups) {
        const [actual, expected] = await Promise.all([
          spine.loadGroupState(network, groupId),
          model.loadGroupState(network, groupId),
        ]);
        expect(actual === null).toBe(expected === null);
        const contents = (state: GroupState | null) =>
          Object.fromEntries(
            [...(state?.contacts ?? [])].map(([id, contact]) => [id, canonicalize(contact.content)]).sort(),
          );
        expect(contents(actual)).toEqual(contents(expected));
        expect(actual?.group.name).toBe(expected?.group.name);
      }
    });
  });

  describe('subscribe', () => {
    it("sees every change under 'netA/users' and nothing from netA/admin or netB; unsubscribe deletes its subscription", async () => {
      const netA = `netA-${randomUUID().slice(0, 8)}`;
      const netB = `netB-${randomUUID().slice(0, 8)}`;
      const spine = mesh.client();
      const groupChanges = mesh.pubsub.topic(mesh.mesh.topology.topics.groupChanges.name);
      const watchNames = async () =>
        (await groupChanges.getSubscriptions())[0].map((s) => s.name).filter((n) => n.includes('watch-'));
      const before = await watchNames();

      const seen: Array<{ path: string; state: GroupState | null }> = [];
      const unsubscribe = await spine.subscribe(`${netA}/users`, (state, change) => {
        seen.push({ path: change.path, state });
      });
      const created = (await watchNames()).filter((name) => !before.includes(name));
      expect(created).toHaveLength(1);

      await spine.saveContactContent(netA, 'users', 'count', 1);
      await spine.saveContactContent(netA, 'users/@alice', 'mood', 'happy');
      // Callbacks get the group as of delivery, so the delete below waits until this one was seen.
      await eventually(
        () =>
          expect(
            seen.some((s) => s.path === `${netA}/users/@alice` && s.state?.contacts.get('mood')?.content === 'happy'),
          ).toBe(true),
        { timeoutMs: 20_000 },
      );
      await spine.saveContactContent(netA, 'admin', 'secret', 1);
      await spine.saveContactContent(netA, 'usersX', 'other', 1);
      await spine.saveContactContent(netB, 'users', 'count', 1);
      await spine.deleteGroup(netA, 'users/@alice');
      await spine.flush();
      // A last change under the prefix: once seen, anything wrongly delivered before it has arrived too.
      await spine.saveContactContent(netA, 'users', 'count', 2, { wait: 'materialized' });

      await eventually(() => expect(seen.some((s) => s.state?.contacts.get('count')?.content === 2)).toBe(true), {
        timeoutMs: 20_000,
      });
      await eventually(
        () => expect(seen.some((s) => s.path === `${netA}/users/@alice` && s.state === null)).toBe(true),
        { timeoutMs: 20_000 },
      );
      expect(seen.every((s) => s.path === `${netA}/users` || s.path.startsWith(`${netA}/users/`))).toBe(true);

      // A crashed client's subscription expires after a day without use.
      const [metadata] = await mesh.pubsub.subscription(created[0]!).getMetadata();
      expect(Number(metadata.expirationPolicy?.ttl?.seconds)).toBe(24 * 60 * 60);
      expect(metadata.filter).toBe(`attributes.path = "${netA}/users" OR hasPrefix(attributes.path, "${netA}/users/")`);
      // No dead-letter policy on the emulator: its dead-letter forwarding would stop delivery for good.
      expect(metadata.deadLetterPolicy ?? null).toBeNull();

      await unsubscribe();
      expect(await watchNames()).not.toContain(created[0]);
    });

    it("close() publishes what is buffered and removes the client's subscriptions", async () => {
      const network = `close-${randomUUID().slice(0, 8)}`;
      const groupChanges = mesh.pubsub.topic(mesh.mesh.topology.topics.groupChanges.name);
      const names = async () => (await groupChanges.getSubscriptions())[0].map((s) => s.name);
      const before = await names();
      const spine = mesh.client();
      await spine.initialize();
      await spine.subscribe(`${network}/g`, () => undefined);
      const during = (await names()).filter((n) => !before.includes(n));
      expect(during.some((n) => n.includes('watch-'))).toBe(true);
      expect(during.some((n) => n.includes('ack-'))).toBe(true);
      const writes = Array.from({ length: 20 }, (_, i) => spine.saveContactContent(network, 'g', `c${i}`, i));
      await Promise.all(writes);
      await spine.close();
      const after = await names();
      for (const name of during) expect(after).not.toContain(name);
      const reader = mesh.client();
      await eventually(async () => expect((await reader.loadGroupState(network, 'g'))?.contacts.size).toBe(20), {
        timeoutMs: 30_000,
      });
    });
  });

  describe('flush', () => {
    it('rejects with a timeout that names the writes not yet materialized, and resolves once they are', async () => {
      const network = `flush-${randomUUID().slice(0, 8)}`;
      const spine = mesh.client();
      await spine.initialize();
      await mesh.mesh.functions.stop();
      try {
        await spine.saveContactContent(network, 'pending-group', 'c', 1);
        const failure = await spine.flush(1_500).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(failure).toBeInstanceOf(TimeoutError);
        expect((failure as Error).message).toContain(`${network}/pending-group`);
        expect((failure as Error).message).toMatch(/1 of 1 writes not materialized/);
      } finally {
        await mesh.mesh.restartFunctions();
      }
      await spine.flush(60_000);
      expect(await spine.loadContactContent(network, 'pending-group', 'c')).toBe(1);
    });
  });

  describe('dead letters', () => {
    it('dead-letters a poison event after the configured attempts while other writes flow, and replays it once fixed', async () => {
      const network = `poison-${randomUUID().slice(0, 8)}`;
      const spine = mesh.client();
      const deadLetters = new DeadLetterStore(mesh.storage, mesh.mesh.settings.bucket);
      const content = new ContentStore(mesh.storage, mesh.mesh.settings.bucket);

      // Content the event refers to but that is not stored yet: materialize fails until it is.
      const missing = Buffer.from(encode({ finally: 'here', id: randomUUID() }));
      const sha256 = createHash('sha256').update(missing).digest('hex');
      const poison = createEvent(
        EventType.ContactWritten,
        {
          networkId: network,
          groupId: 'stuck',
          contactId: 'c',
          contentRef: { object: `content/${sha256}`, sha256, size: missing.length },
          stamp: new HybridLogicalClock('poisoner').tick(),
          writerId: 'poisoner',
          seq: 1,
        },
        { source: '//test/poisoner' },
      );
      await publishEvent(writesTopic(), poison);

      // Meanwhile other writes keep flowing.
      for (let i = 0; i < 20; i++) await spine.saveContactContent(network, 'flowing', `c${i}`, i);
      await spine.flush();
      expect((await spine.loadGroupState(network, 'flowing'))?.contacts.size).toBe(20);

      const letter = await eventually(
        async () => {
          const found = (await deadLetters.list()).find((l) => l.attributes['ce-id'] === poison.id);
          expect(found).toBeDefined();
          return found!;
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      expect(letter.source).toBe('delivery-attempts');
      expect(letter.deliveryAttempts).toBe(MATERIALIZE_MAX_DELIVERY_ATTEMPTS);
      expect(letter.reason).toMatch(/delivery attempts/);
      expect(await spine.loadContactContent(network, 'stuck', 'c')).toBeNull();

      await content.put(missing);
      await deadLetters.replay(letter.id, writesTopic());
      await eventually(
        async () =>
          expect(await spine.loadContactContent(network, 'stuck', 'c')).toEqual(JSON.parse(missing.toString())),
        { timeoutMs: 30_000 },
      );
      expect((await deadLetters.list()).some((l) => l.id === letter.id)).toBe(false);
      expect((await deadLetters.list({ replayed: true })).some((l) => l.id === letter.id && l.replayedAt)).toBe(true);
    });

    it('records a malformed event at once, with the reason, and acknowledges it', async () => {
      const deadLetters = new DeadLetterStore(mesh.storage, mesh.mesh.settings.bucket);
      const marker = randomUUID();
      await writesTopic().publishMessage({
        data: Buffer.from(`{"not":"an event","marker":"${marker}"}`),
        attributes: { path: `bad/${marker}` },
        orderingKey: `bad/${marker}`,
      });
      const letter = await eventually(
        async () => {
          const found = (await deadLetters.list()).find((l) => l.attributes.path === `bad/${marker}`);
          expect(found).toBeDefined();
          return found!;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      expect(letter.source).toBe('materialize');
      expect(letter.reason).toMatch(/malformed event envelope/);
      expect(Buffer.from(letter.data, 'base64').toString()).toContain(marker);
    });
  });

  describe('crash safety', () => {
    it('loses no acknowledged write when the functions process is killed mid-stream and started again', async () => {
      const network = `crash-${randomUUID().slice(0, 8)}`;
      const spine = mesh.client({ flushTimeoutMs: 150_000 });
      const total = 400;
      let acknowledged = 0;
      const writing = (async () => {
        for (let i = 0; i < total; i++) {
          await spine.saveContactContent(network, `g${i % 8}`, `c${i}`, { i });
          acknowledged += 1;
        }
      })();
      await eventually(() => expect(acknowledged).toBeGreaterThan(total / 4), { timeoutMs: 60_000 });
      await mesh.mesh.restartFunctions({ crash: true });
      await writing;
      await spine.flush();
      for (let g = 0; g < 8; g++) {
        const group = await spine.loadGroupState(network, `g${g}`);
        expect(group?.contacts.size).toBe(total / 8);
      }
      for (let i = 0; i < total; i += 37)
        expect(await spine.loadContactContent(network, `g${i % 8}`, `c${i}`)).toEqual({ i });
    });
  });

  describe('SpineStorage.fromEnv', () => {
    it('builds a client of the mesh from exactly the environment npm start writes', async () => {
      const spine = SpineStorage.fromEnv({ ...mesh.mesh.env });
      try {
        const network = `env-${randomUUID().slice(0, 8)}`;
        await spine.saveContactContent(network, 'g', 'c', { from: 'env' }, { wait: 'materialized' });
        expect(await spine.loadContactContent(network, 'g', 'c')).toEqual({ from: 'env' });
        expect(spine.topology.prefix).toBe(mesh.mesh.env.SPINE_TOPIC_PREFIX);
      } finally {
        await spine.close();
      }
      await expect(spine.loadContactContent('n', 'g', 'c')).rejects.toThrow(/after close/);
    });

    it('refuses a bad setting with an error naming it', () => {
      expect(() => SpineStorage.fromEnv({ ...mesh.mesh.env, SPINE_PERSIST_ON: 'sometimes' })).toThrow(
        /SPINE_PERSIST_ON/,
      );
    });
  });

  describe('the functions of the mesh', () => {
    it('serve the health job: 200 with a healthy report while the mesh is up', async () => {
      const response = await fetch(`${mesh.mesh.functions.urls.health}/`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      });
      const report = (await response.json()) as {
        status: string;
        checks: { canary: { ok: boolean; materializedMs: number } };
      };
      expect(response.status).toBe(200);
      expect(report.status).toBe('healthy');
      expect(report.checks.canary.ok).toBe(true);
      expect(report.checks.canary.materializedMs).toBeGreaterThan(0);
    });
  });
}
