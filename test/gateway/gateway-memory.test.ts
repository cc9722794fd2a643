/**
 * The gateway over real HTTP and WebSocket, backed by MemoryStorage for speed: RemoteStorage passes
 * the conformance suite through it, and every refusal (keys, scopes, rate, bad input) is checked to
 * answer the right status and to change nothing. The mesh-backed run is gateway-mesh.test.ts.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { encode } from '../../shared/codec';
import {
  AuthenticationError,
  StorageClosedError,
  ContentTooLargeError,
  InvalidArgumentError,
  InvalidIdError,
  NetworkNotFoundError,
  PermissionDeniedError,
  SnapshotNotFoundError,
  StorageUnavailableError,
} from '../../shared/errors';
import { MemoryStorage } from '../../shared/backends/memory';
import { RemoteStorage } from '../../shared/backends/remote';
import { createStorage } from '../../shared/create-storage';
import type { GroupChange, GroupState } from '../../shared/model';
import { eventually, runNetworkStorageConformance } from 'super-spine/testing';
import { ApiKeys, MemoryKeyRecords, type KeyScopes } from '../../gateway/keys';
import { startGateway, type Gateway } from '../../gateway/server';
import { createMemoryLogger } from '../helpers/emulators';

const backing = new MemoryStorage();
const keys = new ApiKeys(new MemoryKeyRecords());
let gateway: Gateway;
let adminKey: string;
const clients: RemoteStorage[] = [];

function client(apiKey: string, url = gateway.url): RemoteStorage {
  const remote = new RemoteStorage({
    url,
    apiKey,
    reconnectMinMs: 20,
    reconnectMaxMs: 200,
    logger: createMemoryLogger(),
  });
  clients.push(remote);
  return remote;
}

async function makeKey(scopes: KeyScopes, rateLimit = 10_000): Promise<string> {
  return (await keys.create({ name: `test-${randomUUID().slice(0, 6)}`, scopes, rateLimit })).key;
}

async function post(
  method: string,
  body: string,
  apiKey?: string,
): Promise<{ status: number; json: { error?: { code: string; message: string } }; headers: Headers }> {
  const response = await fetch(`${gateway.url}/v1/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body,
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : {}, headers: response.headers };
}

const net = (label = 'net') => `${label}-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  gateway = await startGateway({
    storage: backing,
    keys,
    logger: createMemoryLogger(),
    keyCacheMs: 50,
    maxBodyBytes: 256 * 1024,
  });
  adminKey = await makeKey({ '*': 'read-write' });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await gateway.stop();
  await backing.close();
});

runNetworkStorageConformance('RemoteStorage through the gateway (MemoryStorage behind it)', async () => ({
  storage: client(adminKey),
}));

// The read cache kept fresh over the gateway's WebSocket: createStorage as an agent would call it.
runNetworkStorageConformance('createStorage({ type: remote, cache }) through the gateway', async () => ({
  storage: createStorage({
    type: 'remote',
    options: { url: gateway.url, apiKey: adminKey },
    cache: { enabled: true, ttl: 60_000, maxSize: 500 },
  }),
}));

describe('API keys and scopes', () => {
  let netA: string;
  let netB: string;
  let keyA: string;
  let readOnlyA: string;

  beforeEach(async () => {
    netA = net('a');
    netB = net('b');
    keyA = await makeKey({ [netA]: 'read-write' });
    readOnlyA = await makeKey({ [netA]: 'read' });
    await backing.saveContactContent(netA, 'g', 'c', 'a-original');
    await backing.saveContactContent(netB, 'g', 'c', 'b-original');
  });

  it('refuses a request without a key (401) and changes nothing', async () => {
    const answer = await post('saveContactContent', encode({ args: [netA, 'g', 'c', 'changed'] }));
    expect(answer.status).toBe(401);
    expect(answer.json.error?.code).toBe('UNAUTHENTICATED');
    expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await backing.loadContactContent(netA, 'g', 'c')).toBe('a-original');
  });

  it('refuses an unknown or malformed key with 401 and AuthenticationError', async () => {
    const forged = keyA.slice(0, -4) + 'AAAA';
    await expect(client(forged).saveContactContent(netA, 'g', 'c', 'changed')).rejects.toBeInstanceOf(
      AuthenticationError,
    );
    await expect(client('not-a-key').loadContactContent(netA, 'g', 'c')).rejects.toBeInstanceOf(AuthenticationError);
    expect(await backing.loadContactContent(netA, 'g', 'c')).toBe('a-original');
  });

  it('lets a key read and write its network and nothing of another (403), and lists only its networks', async () => {
    const remote = client(keyA);
    await remote.saveContactContent(netA, 'g', 'c', 'a-changed');
    expect(await remote.loadContactContent(netA, 'g', 'c')).toBe('a-changed');
    await expect(remote.loadContactContent(netB, 'g', 'c')).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(remote.loadNetworkState(netB)).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(remote.saveContactContent(netB, 'g', 'c', 'b-changed')).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(remote.deleteNetwork(netB)).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(remote.saveSnapshot(netB)).rejects.toBeInstanceOf(PermissionDeniedError);
    expect(await remote.listNetworks()).toEqual([netA]);
    expect(await backing.loadContactContent(netB, 'g', 'c')).toBe('b-original');
    expect(await backing.listSnapshots(netB)).toEqual([]);
  });

  it('lets a read-only key read but not write (403), and changes nothing', async () => {
    const remote = client(readOnlyA);
    expect(await remote.loadContactContent(netA, 'g', 'c')).toBe('a-original');
    await expect(remote.saveContactContent(netA, 'g', 'c', 'changed')).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(remote.deleteGroup(netA, 'g')).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(remote.sync(new MemoryStorage())).resolves.toEqual({ networks: 0, groups: 0 });
    expect(await backing.loadContactContent(netA, 'g', 'c')).toBe('a-original');
  });

  it('refuses a subscription to another network over the WebSocket, and delivers nothing of it', async () => {
    const remote = client(keyA);
    await expect(remote.subscribe(`${netB}/g`, () => undefined)).rejects.toBeInstanceOf(PermissionDeniedError);
    // The same socket still serves the key's own network.
    const seen: string[] = [];
    const unsubscribe = await remote.subscribe(netA, (_state, change) => void seen.push(change.path));
    await backing.saveContactContent(netB, 'g', 'c', 'b-again');
    await backing.saveContactContent(netA, 'g', 'c', 'a-again');
    await eventually(() => expect(seen).toContain(`${netA}/g`));
    expect(seen.every((path) => path.startsWith(`${netA}/`))).toBe(true);
    await unsubscribe();
  });

  it('refuses a WebSocket without a valid key before upgrading (401)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/v1/subscribe`, {
        headers: { authorization: 'Bearer ssk_000000000000_' + 'A'.repeat(43) },
      });
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('open', () => reject(new Error('the socket opened')));
      socket.on('error', () => undefined);
    });
    expect(status).toBe(401);
  });

  it('stops honouring a revoked key (401) and closes its sockets', async () => {
    const { key, record } = await keys.create({ scopes: { [netA]: 'read-write' } });
    const remote = client(key);
    expect(await remote.loadContactContent(netA, 'g', 'c')).toBe('a-original');
    await keys.revoke(record.id);
    await eventually(() =>
      expect(remote.loadContactContent(netA, 'g', 'c')).rejects.toBeInstanceOf(AuthenticationError),
    );
    await expect(remote.saveContactContent(netA, 'g', 'c', 'changed')).rejects.toBeInstanceOf(AuthenticationError);
    expect(await backing.loadContactContent(netA, 'g', 'c')).toBe('a-original');
  });

  it('closes the sockets of a revoked key, and its client stops knocking', async () => {
    const own = await startGateway({ storage: backing, keys, logger: createMemoryLogger(), keyCacheMs: 50 });
    try {
      const { key, record } = await keys.create({ scopes: { [netA]: 'read' } });
      const logger = createMemoryLogger();
      const remote = new RemoteStorage({ url: own.url, apiKey: key, reconnectMinMs: 20, logger });
      clients.push(remote);
      await remote.subscribe(netA, () => undefined);
      expect(own.stats().sockets).toBe(1);
      await keys.revoke(record.id);
      await eventually(() => expect(own.stats().sockets).toBe(0));
      // Its reconnect was refused (401) once, and it gave up instead of trying again every few ms.
      await eventually(() =>
        expect(logger.entries.map((e) => e.message)).toContain(
          'the gateway refuses the API key; subscriptions stopped',
        ),
      );
      // Proving an absence takes a while: a client that kept knocking would be refused again within 20–40 ms.
      const quietUntil = performance.now() + 300;
      while (performance.now() < quietUntil) {
        expect(own.stats()).toMatchObject({ refused: 1, sockets: 0, storageSubscriptions: 0 });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(remote.reconnects).toBe(0);
    } finally {
      await own.stop();
    }
  });

  it('answers 429 with Retry-After past the key rate limit, and the refused write changes nothing', async () => {
    const slow = await makeKey({ [netA]: 'read-write' }, 2);
    const remote = new RemoteStorage({
      url: gateway.url,
      apiKey: slow,
      rateLimitRetries: 0,
      logger: createMemoryLogger(),
    });
    clients.push(remote);
    await remote.loadContactContent(netA, 'g', 'c');
    await remote.loadContactContent(netA, 'g', 'c');
    const answer = await post('saveContactContent', encode({ args: [netA, 'g', 'c', 'too-fast'] }), slow);
    expect(answer.status).toBe(429);
    expect(answer.json.error?.code).toBe('RATE_LIMITED');
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const error = await remote.loadContactContent(netA, 'g', 'c').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageUnavailableError);
    expect((error as StorageUnavailableError).status).toBe(429);
    expect(await backing.loadContactContent(netA, 'g', 'c')).toBe('a-original');
    // Other keys have their own buckets.
    expect(await client(keyA).loadContactContent(netA, 'g', 'c')).toBe('a-original');
  });

  it('waits out a 429 by its Retry-After and sends the request again (rateLimitRetries)', async () => {
    const slow = await makeKey({ [netA]: 'read-write' }, 5);
    const patient = client(slow);
    const started = performance.now();
    for (let i = 0; i < 8; i++) await patient.saveContactContent(netA, 'g', `n${i}`, i);
    // Five at once, then one every 200 ms.
    expect(performance.now() - started).toBeGreaterThanOrEqual(400);
    expect(await backing.loadContactContent(netA, 'g', 'n7')).toBe(7);
  });
});

describe('bad input gets a clear 4xx and changes nothing', () => {
  let n: string;
  beforeEach(async () => {
    n = net('bad');
    await backing.saveContactContent(n, 'g', 'c', 'kept');
  });
  afterEach(async () => {
    expect(await backing.loadContactContent(n, 'g', 'c')).toBe('kept');
  });

  it('malformed JSON: 400 MALFORMED_REQUEST', async () => {
    const answer = await post('saveContactContent', '{"args": [', adminKey);
    expect(answer.status).toBe(400);
    expect(answer.json.error?.code).toBe('MALFORMED_REQUEST');
    expect((await post('saveContactContent', '[1,2]', adminKey)).status).toBe(400);
    expect((await post('saveContactContent', encode({ args: [n, 'g'] }), adminKey)).json.error?.message).toMatch(
      /takes 4 to 5 arguments, not 2/,
    );
  });

  it('an oversized body: 413', async () => {
    const answer = await post('saveContactContent', encode({ args: [n, 'g', 'c', 'x'.repeat(300 * 1024)] }), adminKey);
    expect(answer.status).toBe(413);
    expect(answer.json.error?.code).toBe('BODY_TOO_LARGE');
    await expect(client(adminKey).saveContactContent(n, 'g', 'c', 'y'.repeat(300 * 1024))).rejects.toBeInstanceOf(
      ContentTooLargeError,
    );
  });

  it('an unknown method or route: 404; GET: 405', async () => {
    const answer = await post('dropEverything', encode({ args: [n] }), adminKey);
    expect(answer.status).toBe(404);
    expect(answer.json.error?.code).toBe('UNKNOWN_METHOD');
    expect((await post('constructor', encode({ args: [] }), adminKey)).status).toBe(404);
    expect(
      (await fetch(`${gateway.url}/v1/loadNetworkState`, { headers: { authorization: `Bearer ${adminKey}` } })).status,
    ).toBe(405);
  });

  it('bad ids: 400 INVALID_ID, as InvalidIdError in the client', async () => {
    const answer = await post('saveContactContent', encode({ args: [n, '../g', 'c', 'x'] }), adminKey);
    expect(answer.status).toBe(400);
    expect(answer.json.error?.code).toBe('INVALID_ID');
    const remote = client(adminKey);
    const error = await remote.saveContactContent(n, 'g', 'c/d', 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidIdError);
    expect((error as InvalidIdError).kind).toBe('contact');
    await expect(remote.deleteNetwork('a/b')).rejects.toBeInstanceOf(InvalidIdError);
    await expect(remote.loadSnapshot(n, '..')).rejects.toBeInstanceOf(InvalidIdError);
    await expect(remote.subscribe('', () => undefined)).rejects.toBeInstanceOf(InvalidIdError);
  });

  it('typed errors of the storage keep their class and fields', async () => {
    const remote = client(adminKey);
    const missing = net('missing');
    const notFound = await remote.saveSnapshot(missing).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(NetworkNotFoundError);
    expect((notFound as NetworkNotFoundError).networkId).toBe(missing);
    const noSnapshot = await remote.loadSnapshot(n, 'nope').catch((e: unknown) => e);
    expect(noSnapshot).toBeInstanceOf(SnapshotNotFoundError);
    expect((noSnapshot as SnapshotNotFoundError).snapshotId).toBe('nope');
    await expect(
      remote.saveContactContent(n, 'g', 'c', 'z', { blendMode: 'sideways' as 'merge' }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('a WebSocket message that is not JSON, or of an unknown type, gets an error message and the socket stays usable', async () => {
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/v1/subscribe`, {
      headers: { authorization: `Bearer ${adminKey}` },
    });
    const messages: Array<{ type: string; sub?: string; error?: { code: string } }> = [];
    socket.on('message', (data) => messages.push(JSON.parse(data.toString())));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send('{not json');
    socket.send(JSON.stringify({ type: 'explode', sub: 's1' }));
    socket.send(JSON.stringify({ type: 'subscribe', sub: 's2', path: `${n}/g` }));
    await eventually(() => expect(messages.map((m) => m.type)).toEqual(['error', 'error', 'subscribed']));
    expect(messages[0]!.error?.code).toBe('MALFORMED_REQUEST');
    socket.close();
  });
});

describe('createStorage({ type: remote, persistence: { saveInterval } })', () => {
  it('asks the gateway to flush every saveInterval', async () => {
    /** The storage behind the gateway, counting the flushes it is asked for (SpineStorage persists batched writes on them). */
    class FlushCountingStorage extends MemoryStorage {
      flushes = 0;
      async flush(): Promise<void> {
        this.flushes += 1;
      }
    }
    const counted = new FlushCountingStorage();
    const own = await startGateway({ storage: counted, keys, logger: createMemoryLogger() });
    const storage = createStorage({
      type: 'remote',
      options: { url: own.url, apiKey: adminKey },
      persistence: { saveInterval: 20 },
    });
    try {
      await eventually(() => expect(counted.flushes).toBeGreaterThanOrEqual(3));
    } finally {
      await storage.close();
      await own.stop();
      await counted.close();
    }
  });
});

describe('RemoteStorage when the gateway is not there', () => {
  it('reports an unreachable gateway as StorageUnavailableError, for requests and subscriptions', async () => {
    const gone = await startGateway({ storage: backing, keys, logger: createMemoryLogger() });
    await gone.stop();
    const remote = client(adminKey, gone.url);
    const error = await remote.loadNetworkState('n').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageUnavailableError);
    expect((error as StorageUnavailableError).status).toBe('ECONNREFUSED');
    await expect(remote.subscribe('n', () => undefined)).rejects.toBeInstanceOf(StorageUnavailableError);
  });

  it('refuses every call after close() with StorageClosedError', async () => {
    const remote = client(adminKey);
    await remote.close();
    await expect(remote.loadNetworkState('n')).rejects.toBeInstanceOf(StorageClosedError);
    await expect(remote.subscribe('n', () => undefined)).rejects.toBeInstanceOf(StorageClosedError);
  });

  it('refuses a config without a url or key at once', () => {
    expect(() => new RemoteStorage({ url: 'gateway:8094', apiKey: 'k' })).toThrow(InvalidArgumentError);
    expect(() => new RemoteStorage({ url: 'http://gateway:8094', apiKey: '' })).toThrow(InvalidArgumentError);
  });
});

describe('subscriptions through the gateway', () => {
  it('resume after the gateway restarts on the same port without missing a change made while it was down', async () => {
    const n = net('resume');
    // A gateway of its own on a port of its own, so the restart does not disturb the other tests.
    let own = await startGateway({ storage: backing, keys, logger: createMemoryLogger() });
    const port = own.port;
    const remote = client(adminKey, own.url);
    const seen: Array<{ state: GroupState | null; change: GroupChange }> = [];
    await backing.saveContactContent(n, 'users', 'count', 0);
    await backing.saveContactContent(n, 'gone', 'x', 1);
    const unsubscribe = await remote.subscribe(n, (state, change) => void seen.push({ state, change }));
    await backing.saveContactContent(n, 'users', 'count', 1);
    await eventually(() => expect(seen.some((s) => s.state?.contacts.get('count')?.content === 1)).toBe(true));

    await own.stop();
    // Changes while no gateway runs: an update, a new group and a deletion.
    await backing.saveContactContent(n, 'users', 'count', 2);
    await backing.saveContactContent(n, 'users/@new', 'hello', 'world');
    await backing.deleteGroup(n, 'gone');
    own = await startGateway({ storage: backing, keys, port, logger: createMemoryLogger() });
    try {
      await eventually(() => {
        expect(seen.some((s) => s.change.groupId === 'users' && s.state?.contacts.get('count')?.content === 2)).toBe(
          true,
        );
        expect(
          seen.some((s) => s.change.groupId === 'users/@new' && s.state?.contacts.get('hello')?.content === 'world'),
        ).toBe(true);
        expect(seen.some((s) => s.change.groupId === 'gone' && s.state === null && s.change.kind === 'deleted')).toBe(
          true,
        );
      });
      expect(remote.reconnects).toBeGreaterThanOrEqual(1);
      // Live again after the resume.
      await backing.saveContactContent(n, 'users', 'count', 3);
      await eventually(() => expect(seen.some((s) => s.state?.contacts.get('count')?.content === 3)).toBe(true));
      await unsubscribe();
    } finally {
      await own.stop();
    }
  });

  it('a RemoteStorage closed as a slow consumer reconnects and delivers the newest state', async () => {
    const n = net('slow-client');
    const own = await startGateway({
      storage: backing,
      keys,
      logger: createMemoryLogger(),
      maxBufferedBytes: 64 * 1024,
    });
    try {
      const remote = client(adminKey, own.url);
      const seen: unknown[] = [];
      await remote.subscribe(n, (state) => void seen.push(state?.contacts.get('last')?.content));
      // The client's socket stops reading, as a busy event loop would.
      const raw = (remote as unknown as { socket: { _socket: { pause(): void; resume(): void } } }).socket._socket;
      raw.pause();
      const big = 'z'.repeat(16 * 1024);
      for (let i = 0; own.stats().slowConsumersDropped === 0 && i < 5000; i++) {
        await backing.saveContactContent(n, 'g', `c${i % 50}`, big);
        if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      expect(own.stats().slowConsumersDropped).toBe(1);
      await backing.saveContactContent(n, 'g', 'last', 'final');
      raw.resume();
      await eventually(() => expect(seen).toContain('final'));
      expect(remote.reconnects).toBeGreaterThanOrEqual(1);
    } finally {
      await own.stop();
    }
  });

  it('drops a socket that stops answering pings, and its subscriptions with it', async () => {
    const own = await startGateway({ storage: backing, keys, logger: createMemoryLogger(), pingIntervalMs: 100 });
    try {
      const socket = new WebSocket(`${own.url.replace('http', 'ws')}/v1/subscribe`, {
        headers: { authorization: `Bearer ${adminKey}` },
      });
      let pings = 0;
      socket.on('ping', () => (pings += 1));
      await new Promise((resolve) => socket.once('open', resolve));
      socket.send(JSON.stringify({ type: 'subscribe', sub: 's', path: net('ping') }));
      await new Promise((resolve) => socket.once('message', resolve));
      expect(own.stats()).toMatchObject({ sockets: 1, storageSubscriptions: 1 });
      // A live client answers pings by itself: still connected after several of them.
      await eventually(() => expect(pings).toBeGreaterThanOrEqual(4));
      expect(own.stats()).toMatchObject({ sockets: 1, deadSocketsDropped: 0 });
      // One that reads nothing more (as a vanished peer) does not.
      (socket as unknown as { _socket: { pause(): void } })._socket.pause();
      await eventually(() =>
        expect(own.stats()).toMatchObject({ sockets: 0, storageSubscriptions: 0, deadSocketsDropped: 1 }),
      );
      socket.terminate();
    } finally {
      await own.stop();
    }
  });

  it('shares one storage subscription between sockets on one path, and removes it with the last', async () => {
    const n = net('share');
    const before = gateway.stats().storageSubscriptions;
    const a = client(adminKey);
    const b = client(adminKey);
    const offA = await a.subscribe(`${n}/g`, () => undefined);
    const offB = await b.subscribe(`${n}/g`, () => undefined);
    expect(gateway.stats().storageSubscriptions).toBe(before + 1);
    await offA();
    expect(gateway.stats().storageSubscriptions).toBe(before + 1);
    await offB();
    await eventually(() => expect(gateway.stats().storageSubscriptions).toBe(before));
  });

  it('closes a consumer that stops reading once its send buffer passes the bound (4008), instead of queueing without end', async () => {
    const n = net('slow');
    const own = await startGateway({
      storage: backing,
      keys,
      logger: createMemoryLogger(),
      maxBufferedBytes: 64 * 1024,
    });
    try {
      const socket = new WebSocket(`${own.url.replace('http', 'ws')}/v1/subscribe`, {
        headers: { authorization: `Bearer ${adminKey}` },
      });
      await new Promise((resolve) => socket.once('open', resolve));
      socket.send(JSON.stringify({ type: 'subscribe', sub: 's', path: n }));
      await new Promise((resolve) => socket.once('message', resolve));
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
      // Stop reading: the kernel buffers fill, then the gateway's.
      (socket as unknown as { _socket: { pause(): void } })._socket.pause();
      const big = 'x'.repeat(16 * 1024);
      for (let i = 0; own.stats().slowConsumersDropped === 0 && i < 5000; i++) {
        await backing.saveContactContent(n, 'g', `c${i % 50}`, `${i}${big}`);
        if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      expect(own.stats().slowConsumersDropped).toBe(1);
      (socket as unknown as { _socket: { resume(): void } })._socket.resume();
      expect([4008, 1006]).toContain(await closed);
      await eventually(() => expect(own.stats().sockets).toBe(0));
    } finally {
      await own.stop();
    }
  });
});
