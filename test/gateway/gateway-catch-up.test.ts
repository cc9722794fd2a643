/**
 * Catch-up (`since`) through a gateway whose storage keeps no event archive (MemoryStorage): the
 * gateway refuses it and holds nothing, and RemoteStorage resumes by re-reading its groups. The
 * archive-backed run is test/e2e/catch-up.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { eventually } from 'super-spine/testing';
import { ApiKeys, MemoryKeyRecords } from '../../gateway/keys';
import { startGateway, type Gateway } from '../../gateway/server';
import { MemoryStorage } from '../../shared/backends/memory';
import { RemoteStorage } from '../../shared/backends/remote';
import { InvalidArgumentError } from '../../shared/errors';
import type { GroupState } from '../../shared/model';
import { createMemoryLogger } from '../helpers/emulators';

const backing = new MemoryStorage();
const keys = new ApiKeys(new MemoryKeyRecords());
let gateway: Gateway;
let key: string;
const clients: RemoteStorage[] = [];

function client(url = gateway.url): RemoteStorage {
  const remote = new RemoteStorage({
    url,
    apiKey: key,
    reconnectMinMs: 20,
    reconnectMaxMs: 200,
    logger: createMemoryLogger(),
  });
  clients.push(remote);
  return remote;
}

beforeAll(async () => {
  gateway = await startGateway({ storage: backing, keys, logger: createMemoryLogger() });
  key = (await keys.create({ name: 'catch-up', scopes: { '*': 'read-write' } })).key;
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await gateway.stop();
});

test('since is refused where the storage keeps no archive, and nothing is held', async () => {
  const remote = client();
  const network = `n-${randomUUID().slice(0, 8)}`;
  const refused = remote.subscribe(network, () => undefined, { since: new Date(Date.now() - 1_000) });
  await expect(refused).rejects.toBeInstanceOf(InvalidArgumentError);
  await expect(refused).rejects.toThrow(/keeps no event archive/);
  await expect(remote.subscribe(network, () => undefined, { since: 'not a time' })).rejects.toBeInstanceOf(
    InvalidArgumentError,
  );
  await eventually(() => expect(gateway.stats().subscriptions).toBe(0));
});

test('RemoteStorage then resumes by re-reading its groups, missing no change', async () => {
  const network = `n-${randomUUID().slice(0, 8)}`;
  let own = await startGateway({ storage: backing, keys, logger: createMemoryLogger() });
  const port = own.port;
  const remote = client(own.url);
  const seen: Array<GroupState | null> = [];
  try {
    await backing.saveContactContent(network, 'g', 'c', 0);
    const unsubscribe = await remote.subscribe(network, (state) => void seen.push(state));
    await own.stop();
    await backing.saveContactContent(network, 'g', 'c', 1);
    own = await startGateway({ storage: backing, keys, port, logger: createMemoryLogger() });
    await eventually(() => expect(seen.some((state) => state?.contacts.get('c')?.content === 1)).toBe(true));
    expect(remote.resumes).toEqual({ fromArchive: 0, reread: 1 });
    await unsubscribe();
  } finally {
    await own.stop();
  }
});
