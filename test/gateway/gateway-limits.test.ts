/**
 * What keeps one client of the gateway from starving the others, over real HTTP, WebSocket and
 * raw TCP with MemoryStorage behind it: subscription bounds (typed refusal, socket still usable),
 * shared storage subscriptions, unknown keys refused without key reads, a body deadline, system
 * networks only by name, flush only with write scope, sync checked whole before it writes.
 * The same against the mesh's Pub/Sub emulator is test/e2e/gateway-limits.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { eventually } from 'super-spine/testing';
import { ApiKeys, MemoryKeyRecords, type ApiKeyRecord, type KeyRecordStore, type KeyScopes } from '../../gateway/keys';
import { startGateway, type Gateway, type GatewayOptions } from '../../gateway/server';
import { MemoryStorage } from '../../shared/backends/memory';
import { RemoteStorage } from '../../shared/backends/remote';
import { encode } from '../../shared/codec';
import {
  InvalidArgumentError,
  LimitExceededError,
  PermissionDeniedError,
  UnserializableContentError,
} from '../../shared/errors';
import { CANARY_GROUP, CANARY_NETWORK, REGISTRY_NETWORK, AGENTS_GROUP } from '../../shared/system';
import { createMemoryLogger } from '../helpers/emulators';

jest.setTimeout(60_000);

/** Key records that count their reads, as the Storage reads they stand for. */
class CountingKeyRecords implements KeyRecordStore {
  reads = 0;
  constructor(private readonly inner: KeyRecordStore) {}
  read(id: string): Promise<ApiKeyRecord | undefined> {
    this.reads += 1;
    return this.inner.read(id);
  }
  write(record: ApiKeyRecord, options?: { create?: boolean }): Promise<void> {
    return this.inner.write(record, options);
  }
  list(): Promise<ApiKeyRecord[]> {
    return this.inner.list();
  }
}

const backing = new MemoryStorage();
const records = new CountingKeyRecords(new MemoryKeyRecords());
const keys = new ApiKeys(records);
const gateways: Gateway[] = [];
const clients: RemoteStorage[] = [];
const sockets: WebSocket[] = [];

async function gatewayWith(options: Partial<GatewayOptions> = {}): Promise<Gateway> {
  const gateway = await startGateway({ storage: backing, keys, logger: createMemoryLogger(), ...options });
  gateways.push(gateway);
  return gateway;
}

async function makeKey(scopes: KeyScopes, rateLimit = 10_000): Promise<string> {
  return (await keys.create({ name: `limits-${randomUUID().slice(0, 6)}`, scopes, rateLimit })).key;
}

function client(gateway: Gateway, apiKey: string): RemoteStorage {
  const remote = new RemoteStorage({
    url: gateway.url,
    apiKey,
    reconnectMinMs: 20,
    reconnectMaxMs: 200,
    rateLimitRetries: 0,
    logger: createMemoryLogger(),
  });
  clients.push(remote);
  return remote;
}

type ServerMessage = {
  type: string;
  sub?: string;
  error?: { code: string; message: string; details?: { limit?: number } };
};

/** A raw WebSocket to the gateway, with every message it received. */
async function rawSocket(
  gateway: Gateway,
  apiKey: string,
): Promise<{
  socket: WebSocket;
  messages: ServerMessage[];
  subscribe(sub: string, path: string): Promise<ServerMessage>;
}> {
  const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/v1/subscribe`, {
    headers: { authorization: `Bearer ${apiKey}` },
  });
  sockets.push(socket);
  const messages: ServerMessage[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(data.toString()) as ServerMessage));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const subscribe = async (sub: string, path: string) => {
    socket.send(JSON.stringify({ type: 'subscribe', sub, path }));
    let answer: ServerMessage | undefined;
    await eventually(() => {
      answer = messages.find((m) => m.sub === sub && (m.type === 'subscribed' || m.type === 'error'));
      expect(answer).toBeDefined();
    });
    return answer!;
  };
  return { socket, messages, subscribe };
}

const net = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

afterAll(async () => {
  for (const socket of sockets) socket.terminate();
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(gateways.map((g) => g.stop()));
  await backing.close();
});

describe('subscriptions', () => {
  it('shares one storage subscription per network among all sockets and paths, delivering each socket only its paths', async () => {
    const gateway = await gatewayWith();
    const key = await makeKey({ '*': 'read' });
    const n = net('fan');
    const a = await rawSocket(gateway, key);
    const b = await rawSocket(gateway, key);
    for (let i = 0; i < 20; i++) {
      expect((await a.subscribe(`a${i}`, `${n}/g${i}`)).type).toBe('subscribed');
      expect((await b.subscribe(`b${i}`, `${n}/g${i % 5}`)).type).toBe('subscribed');
    }
    expect(gateway.stats()).toMatchObject({ storageSubscriptions: 1, subscriptions: 40 });
    await backing.saveContactContent(n, 'g3', 'c', 1);
    await backing.saveContactContent(n, 'other', 'c', 1);
    await eventually(() => {
      expect(a.messages.filter((m) => m.type === 'change').map((m) => m.sub)).toEqual(['a3']);
      expect(b.messages.filter((m) => m.type === 'change').map((m) => m.sub)).toEqual(['b3', 'b8', 'b13', 'b18']);
    });
    a.socket.close();
    b.socket.close();
    await eventually(() => expect(gateway.stats()).toMatchObject({ storageSubscriptions: 0, subscriptions: 0 }));
  });

  it('refuses subscriptions past the bounds per socket, per key, per key networks, in total and of watched networks with LIMIT_EXCEEDED; the socket stays usable', async () => {
    const gateway = await gatewayWith({
      maxSubscriptionsPerSocket: 3,
      maxSubscriptionsPerKey: 5,
      maxNetworksPerKey: 2,
      maxSubscriptions: 7,
      maxWatchedNetworks: 2,
    });
    const n = net('bound');
    const greedy = await makeKey({ '*': 'read' });
    const s1 = await rawSocket(gateway, greedy);
    for (let i = 0; i < 3; i++) expect((await s1.subscribe(`s${i}`, `${n}/g${i}`)).type).toBe('subscribed');
    const perSocket = await s1.subscribe('s3', `${n}/g3`);
    expect(perSocket.error).toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 3 } });
    expect(perSocket.error?.message).toMatch(/a socket holds at most 3 subscriptions/);

    const s2 = await rawSocket(gateway, greedy);
    expect((await s2.subscribe('t0', `${n}/h0`)).type).toBe('subscribed');
    expect((await s2.subscribe('t1', `${n}/h1`)).type).toBe('subscribed');
    const perKey = await s2.subscribe('t2', `${n}/h2`);
    expect(perKey.error).toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 5 } });
    expect(perKey.error?.message).toMatch(/holds 5 subscriptions, the most one key may hold/);

    // Still usable: an unsubscribe frees a place, and the next subscribe takes it.
    s1.socket.send(JSON.stringify({ type: 'unsubscribe', sub: 's0' }));
    await eventually(() => expect(gateway.stats().subscriptions).toBe(4));
    expect((await s1.subscribe('s4', `${n}/g4`)).type).toBe('subscribed');
    s1.socket.send(JSON.stringify({ type: 'unsubscribe', sub: 's4' }));
    s1.socket.send(JSON.stringify({ type: 'unsubscribe', sub: 's1' }));
    await eventually(() => expect(gateway.stats().subscriptions).toBe(3));
    expect((await s1.subscribe('other-net', net('second'))).type).toBe('subscribed');
    const perKeyNetworks = await s1.subscribe('third-net', net('third'));
    expect(perKeyNetworks.error).toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 2 } });

    // Another key still gets in, until the gateway's own bounds.
    const other = await makeKey({ '*': 'read' });
    const o = await rawSocket(gateway, other);
    expect((await o.subscribe('o0', n)).type).toBe('subscribed');
    const watched = await o.subscribe('o1', net('fourth'));
    expect(watched.error).toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 2 } });
    expect(watched.error?.message).toMatch(/watches 2 networks/);
    expect((await o.subscribe('o2', `${n}/x`)).type).toBe('subscribed');
    const o2 = await rawSocket(gateway, other);
    expect((await o2.subscribe('p0', `${n}/y`)).type).toBe('subscribed');
    const total = await o2.subscribe('p1', `${n}/z`);
    expect(total.error).toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 7 } });
    expect(gateway.stats()).toMatchObject({ subscriptions: 7, storageSubscriptions: 2 });
    expect(gateway.stats().subscriptionsRefused).toBe(5);

    // RemoteStorage gets the typed error; what it already holds goes on delivering.
    const remote = client(gateway, other);
    await expect(remote.subscribe(`${n}/w`, () => undefined)).rejects.toBeInstanceOf(LimitExceededError);
    await backing.saveContactContent(n, 'y', 'c', 'flows');
    await eventually(() => expect(o2.messages.some((m) => m.type === 'change' && m.sub === 'p0')).toBe(true));
  });
});

describe('unknown keys', () => {
  it('refuses 1,000 unknown well-formed keys with few key reads, and a good request is not slowed', async () => {
    const gateway = await gatewayWith({ keyLookupsPerSecond: 10, keyCacheMs: 60_000 });
    const good = await makeKey({ '*': 'read-write' });
    const n = net('good');
    await backing.saveContactContent(n, 'g', 'c', 'v');
    const goodRequest = async () => {
      const started = performance.now();
      const response = await fetch(`${gateway.url}/v1/loadContactContent`, {
        method: 'POST',
        headers: { authorization: `Bearer ${good}` },
        body: encode({ args: [n, 'g', 'c'] }),
      });
      expect(response.status).toBe(200);
      return performance.now() - started;
    };
    await goodRequest();
    const quiet = Math.min(await goodRequest(), await goodRequest(), await goodRequest());
    const readsBefore = records.reads;
    const statuses = new Map<number, number>();
    const flood = Array.from({ length: 1_000 }, async (_, i) => {
      // Half reuse a few ids with other secrets, half are ids never seen.
      const id = i % 2 === 0 ? `00000000000${i % 5}` : randomUUID().replace(/-/g, '').slice(0, 12);
      const key = `ssk_${id}_${randomUUID().replace(/-/g, '').padEnd(43, 'A').slice(0, 43)}`;
      const response = await fetch(`${gateway.url}/v1/loadContactContent`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
        body: encode({ args: [n, 'g', 'c'] }),
      });
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    });
    const during = await goodRequest();
    await Promise.all(flood);
    const after = await goodRequest();
    const reads = records.reads - readsBefore;
    console.log(
      `gateway unknown-key flood: 1000 requests, ${reads} key reads, statuses ${JSON.stringify(Object.fromEntries(statuses))}; good request ${quiet.toFixed(1)} ms quiet, ${during.toFixed(1)} ms during, ${after.toFixed(1)} ms after`,
    );
    // A token bucket of 10/s over a flood of a few seconds: far fewer reads than requests.
    expect(reads).toBeLessThan(100);
    expect((statuses.get(401) ?? 0) + (statuses.get(429) ?? 0)).toBe(1_000);
    expect(gateway.stats().keyLookupsSkipped).toBeGreaterThan(900);
    // Measured from the same process that sends the flood, so "during" includes this process's own queueing; after it, the good key is served at once.
    expect(after).toBeLessThan(1_000);
  });
});

describe('request bodies', () => {
  it('cuts a body that trickles in with 408 after the deadline, and writes nothing', async () => {
    const gateway = await gatewayWith({ bodyTimeoutMs: 1_000 });
    const key = await makeKey({ '*': 'read-write' });
    const n = net('slow-body');
    await backing.saveContactContent(n, 'g', 'c', 'kept');
    const body = encode({ args: [n, 'g', 'c', 'trickled'] });
    const { port } = new URL(gateway.url);
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /v1/saveContactContent HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${key}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`,
    );
    const started = performance.now();
    // One byte every 200 ms: the whole body would take many seconds.
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(body.slice(0, 1));
    }, 200);
    try {
      await closed;
    } finally {
      clearInterval(trickle);
    }
    const heldMs = performance.now() - started;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('"code":"REQUEST_TIMEOUT"');
    expect(heldMs).toBeGreaterThanOrEqual(900);
    expect(heldMs).toBeLessThan(10_000);
    expect(gateway.stats().bodyTimeouts).toBe(1);
    expect(await backing.loadContactContent(n, 'g', 'c')).toBe('kept');
    // The gateway goes on serving.
    await client(gateway, key).saveContactContent(n, 'g', 'c', 'after');
    expect(await backing.loadContactContent(n, 'g', 'c')).toBe('after');
  });
});

describe('scopes', () => {
  it('keeps a * key away from the mesh networks; only a key naming one reaches it', async () => {
    const gateway = await gatewayWith();
    await backing.saveContactContent(REGISTRY_NETWORK, AGENTS_GROUP, 'real-agent', {
      agentId: 'real-agent',
      status: 'ok',
      at: new Date().toISOString(),
    });
    await backing.saveContactContent(CANARY_NETWORK, CANARY_GROUP, 'probe', 1);
    const star = client(gateway, await makeKey({ '*': 'read-write' }));
    await expect(
      star.saveContactContent(REGISTRY_NETWORK, AGENTS_GROUP, 'forged', {
        agentId: 'forged',
        status: 'ok',
        at: new Date().toISOString(),
      }),
    ).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(star.deleteNetwork(CANARY_NETWORK)).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(star.loadNetworkState(REGISTRY_NETWORK)).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(star.subscribe(CANARY_NETWORK, () => undefined)).rejects.toBeInstanceOf(PermissionDeniedError);
    expect(await star.listNetworks()).not.toEqual(expect.arrayContaining([REGISTRY_NETWORK]));
    expect(await star.listNetworks()).not.toContain(CANARY_NETWORK);
    expect(await backing.loadContactContent(REGISTRY_NETWORK, AGENTS_GROUP, 'forged')).toBeNull();
    expect(await backing.exists(CANARY_NETWORK)).toBe(true);

    const named = client(gateway, await makeKey({ [REGISTRY_NETWORK]: 'read' }));
    expect(await named.loadContactContent(REGISTRY_NETWORK, AGENTS_GROUP, 'real-agent')).toMatchObject({
      agentId: 'real-agent',
    });
    await expect(named.saveContactContent(REGISTRY_NETWORK, AGENTS_GROUP, 'forged', 1)).rejects.toBeInstanceOf(
      PermissionDeniedError,
    );
  });

  it('refuses flush to a read-only key (403) and allows it to a key that writes', async () => {
    const gateway = await gatewayWith();
    const n = net('flush');
    const reader = client(gateway, await makeKey({ [n]: 'read', '*': 'read' }));
    await expect(reader.flush()).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(client(gateway, await makeKey({ [n]: 'read-write' })).flush()).resolves.toBeUndefined();
  });

  it('refuses a sync that would write a network the key may not write before writing any: A unchanged', async () => {
    const gateway = await gatewayWith();
    const a = net('a');
    const b = net('b');
    await backing.saveContactContent(a, 'g', 'c', 'a-original');
    const source = new MemoryStorage();
    await source.saveContactContent(a, 'g', 'c', 'a-from-sync');
    await source.saveContactContent(b, 'g', 'c', 'b-from-sync');
    const remote = client(gateway, await makeKey({ [a]: 'read-write', [b]: 'read' }));
    const error = await remote.sync(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as Error).message).toContain(JSON.stringify(b));
    expect((error as Error).message).not.toContain(JSON.stringify(a));
    expect(await backing.loadContactContent(a, 'g', 'c')).toBe('a-original');
    expect(await backing.exists(b)).toBe(false);
    // With both scopes the same sync goes through.
    expect(await client(gateway, await makeKey({ [a]: 'read-write', [b]: 'read-write' })).sync(source)).toEqual({
      networks: 2,
      groups: 2,
    });
    expect(await backing.loadContactContent(a, 'g', 'c')).toBe('a-from-sync');
    await source.close();
  });
});

describe('content through the gateway', () => {
  it('refuses undefined content (INVALID_ARGUMENT), unserializable content and deep text (400) and writes nothing', async () => {
    const gateway = await gatewayWith();
    const key = await makeKey({ '*': 'read-write' });
    const n = net('content');
    await backing.saveContactContent(n, 'g', 'c', 'kept');
    const remote = client(gateway, key);
    await expect(remote.saveContactContent(n, 'g', 'c', undefined)).rejects.toBeInstanceOf(InvalidArgumentError);
    const throwing = {
      get boom(): never {
        throw new Error('exploded');
      },
    };
    await expect(remote.saveContactContent(n, 'g', 'c', throwing)).rejects.toBeInstanceOf(UnserializableContentError);
    const deepText = `{"args":["${n}","g","c",${'['.repeat(60_000)}${']'.repeat(60_000)}]}`;
    const response = await fetch(`${gateway.url}/v1/saveContactContent`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}` },
      body: deepText,
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string; message: string } }).error.message).toMatch(
      /nests more than 910 levels/,
    );
    expect(await backing.loadContactContent(n, 'g', 'c')).toBe('kept');
  });
});
