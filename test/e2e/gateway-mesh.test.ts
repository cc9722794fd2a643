/**
 * RemoteStorage through a real gateway backed by SpineStorage on the local mesh (Pub/Sub
 * emulator, Storage emulator, the functions), with keys in the mesh's bucket: the conformance
 * suite, scopes over HTTP and WebSocket, and subscriptions that resume across a gateway restart
 * without missing a change made while it was down.
 */
import { randomUUID } from 'node:crypto';
import { eventually, runNetworkStorageConformance } from 'super-spine/testing';
import { ApiKeys, GcsKeyRecords } from '../../gateway/keys';
import { startGateway, type Gateway } from '../../gateway/server';
import { RemoteStorage } from '../../shared/backends/remote';
import { PermissionDeniedError } from '../../shared/errors';
import type { GroupChange, GroupState } from '../../shared/model';
import { createMemoryLogger } from '../helpers/emulators';
import { useLocalMesh } from '../helpers/mesh';

jest.setTimeout(120_000);

const mesh = useLocalMesh();
let keys: ApiKeys;
let gateway: Gateway;
let adminKey: string;
const clients: RemoteStorage[] = [];

function startMeshGateway(port = 0): Promise<Gateway> {
  return startGateway({
    storage: mesh.client({ writerId: 'gateway' }),
    keys,
    port,
    closeStorage: true,
    logger: createMemoryLogger(),
  });
}

function remote(apiKey: string, url = gateway.url): RemoteStorage {
  const client = new RemoteStorage({
    url,
    apiKey,
    reconnectMinMs: 50,
    reconnectMaxMs: 500,
    logger: createMemoryLogger(),
  });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  keys = new ApiKeys(new GcsKeyRecords(mesh.storage, mesh.mesh.settings.bucket));
  adminKey = (await keys.create({ name: 'e2e', scopes: { '*': 'read-write' }, rateLimit: 10_000 })).key;
  gateway = await startMeshGateway();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await gateway?.stop();
});

// Reads after flush(): the gateway's mesh client waits until every write it took is materialized.
runNetworkStorageConformance(
  'RemoteStorage through the gateway (SpineStorage on the local mesh behind it)',
  async () => {
    const client = remote(adminKey);
    return { storage: client, settle: () => client.flush() };
  },
);

describe('the gateway on the mesh', () => {
  it('keeps a key to its network over HTTP and WebSocket', async () => {
    const mine = `mine-${randomUUID().slice(0, 8)}`;
    const theirs = `theirs-${randomUUID().slice(0, 8)}`;
    const { key } = await keys.create({ scopes: { [mine]: 'read-write' } });
    const client = remote(key);
    await client.saveContactContent(mine, 'g', 'c', 1);
    await expect(client.saveContactContent(theirs, 'g', 'c', 1)).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(client.subscribe(theirs, () => undefined)).rejects.toBeInstanceOf(PermissionDeniedError);
    await client.flush();
    expect(await client.loadContactContent(mine, 'g', 'c')).toBe(1);
    expect(await remote(adminKey).exists(theirs)).toBe(false);
  });

  it('resumes subscriptions after the gateway restarts, delivering what changed while it was down', async () => {
    const n = `resume-${randomUUID().slice(0, 8)}`;
    let own = await startMeshGateway();
    const port = own.port;
    const writer = mesh.client({ writerId: 'writer' });
    try {
      const client = remote(adminKey, own.url);
      const seen: Array<{ state: GroupState | null; change: GroupChange }> = [];
      await writer.saveContactContent(n, 'users', 'count', 0, { wait: 'materialized' });
      const unsubscribe = await client.subscribe(n, (state, change) => void seen.push({ state, change }));
      await writer.saveContactContent(n, 'users', 'count', 1, { wait: 'materialized' });
      await eventually(() => expect(seen.some((s) => s.state?.contacts.get('count')?.content === 1)).toBe(true), {
        timeoutMs: 30_000,
      });

      // The gateway goes away (its Pub/Sub subscriptions with it); writes go on meanwhile.
      await own.stop();
      await writer.saveContactContent(n, 'users', 'count', 2, { wait: 'materialized' });
      await writer.saveContactContent(n, 'users/@new', 'hello', 'world', { wait: 'materialized' });
      own = await startMeshGateway(port);
      await eventually(
        () => {
          expect(seen.some((s) => s.change.groupId === 'users' && s.state?.contacts.get('count')?.content === 2)).toBe(
            true,
          );
          expect(
            seen.some((s) => s.change.groupId === 'users/@new' && s.state?.contacts.get('hello')?.content === 'world'),
          ).toBe(true);
        },
        { timeoutMs: 30_000 },
      );
      expect(client.reconnects).toBeGreaterThanOrEqual(1);
      // And live again through the new gateway's own subscription.
      await writer.saveContactContent(n, 'users', 'count', 3, { wait: 'materialized' });
      await eventually(() => expect(seen.some((s) => s.state?.contacts.get('count')?.content === 3)).toBe(true), {
        timeoutMs: 30_000,
      });
      await unsubscribe();
    } finally {
      await own.stop();
    }
  });
});
