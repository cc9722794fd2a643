/**
 * `spine keys` as real processes (bin/spine.js) against the Storage emulator, and the keys they
 * make used on a gateway that reads the same bucket: created keys work within their scope,
 * records hold no key, revoked keys are refused.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Storage } from '@google-cloud/storage';
import { eventually } from 'super-spine/testing';
import { startStorageEmulator, type StorageEmulator } from '../../emulators/storage';
import { ApiKeys, GcsKeyRecords, KEYS_OBJECT_PREFIX } from '../../gateway/keys';
import { startGateway, type Gateway } from '../../gateway/server';
import { ExitCode } from '../../cli/errors';
import { MemoryStorage } from '../../shared/backends/memory';
import { RemoteStorage } from '../../shared/backends/remote';
import { AuthenticationError, PermissionDeniedError } from '../../shared/errors';
import { createStorageClient } from '../../shared/mesh/storage-client';
import { createMemoryLogger } from '../helpers/emulators';
import { cliEnv, runSpine, writeMeshEnv, type CliResult } from '../helpers/spine-cli';

jest.setTimeout(60_000);

const BUCKET = 'spine-keys-test';
let emulator: StorageEmulator;
let storage: Storage;
let dataDir: string;
let gateway: Gateway;
const backing = new MemoryStorage();
const clients: RemoteStorage[] = [];

function spine(args: string[]): Promise<CliResult> {
  return runSpine(args, { env: cliEnv(dataDir, { METADATA_SERVER_DETECTION: 'none' }) });
}

async function ok(args: string[]): Promise<string> {
  const result = await spine(args);
  if (result.code !== 0) throw new Error(`spine ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

function remote(apiKey: string): RemoteStorage {
  const client = new RemoteStorage({ url: gateway.url, apiKey, logger: createMemoryLogger() });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  emulator = await startStorageEmulator({ logger: createMemoryLogger() });
  storage = createStorageClient({ projectId: 'spine-local', storageEmulatorHost: emulator.url });
  await storage.createBucket(BUCKET);
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'spine-keys-'));
  await writeMeshEnv(dataDir, {
    GOOGLE_CLOUD_PROJECT: 'spine-local',
    STORAGE_EMULATOR_HOST: emulator.url,
    SPINE_BUCKET: BUCKET,
  });
  gateway = await startGateway({
    storage: backing,
    keys: new ApiKeys(new GcsKeyRecords(storage, BUCKET)),
    keyCacheMs: 100,
    logger: createMemoryLogger(),
  });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await gateway?.stop();
  await backing.close();
  await emulator?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('spine keys', () => {
  it('creates a scoped key that works on the gateway, lists it without its secret, and revokes it', async () => {
    await backing.saveContactContent('team-a', 'g', 'c', 'a');
    await backing.saveContactContent('team-b', 'g', 'c', 'b');
    const created = JSON.parse(
      await ok([
        'keys',
        'create',
        '--write',
        'team-a',
        '--read',
        'team-b',
        '--name',
        'agent one',
        '--rate',
        '20',
        '--json',
      ]),
    ) as {
      key: string;
      id: string;
      scopes: Record<string, string>;
      rateLimit: number;
    };
    expect(created.key).toMatch(/^ssk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(created.scopes).toEqual({ 'team-a': 'read-write', 'team-b': 'read' });
    expect(created.rateLimit).toBe(20);

    // Stored hashed: the record in the bucket does not contain the key or its secret.
    const [files] = await storage.bucket(BUCKET).getFiles({ prefix: KEYS_OBJECT_PREFIX });
    expect(files.map((f) => f.name)).toContain(`${KEYS_OBJECT_PREFIX}${created.id}.json`);
    const stored = (
      await storage.bucket(BUCKET).file(`${KEYS_OBJECT_PREFIX}${created.id}.json`).download()
    )[0].toString();
    expect(stored).not.toContain(created.key.split('_')[2]);
    expect(JSON.parse(stored).hash).toMatch(/^[0-9a-f]{64}$/);

    const client = remote(created.key);
    await client.saveContactContent('team-a', 'g', 'c', 'a2');
    expect(await client.loadContactContent('team-b', 'g', 'c')).toBe('b');
    await expect(client.saveContactContent('team-b', 'g', 'c', 'b2')).rejects.toBeInstanceOf(PermissionDeniedError);
    expect(await backing.loadContactContent('team-b', 'g', 'c')).toBe('b');

    const table = await ok(['keys', 'list']);
    expect(table).toMatch(
      new RegExp(`${created.id}\\s+ssk_${created.id}_…\\s+agent one\\s+team-a:read-write,team-b:read\\s+20`),
    );
    expect(table).not.toContain(created.key);
    const listed = JSON.parse(await ok(['keys', 'list', '--json'])) as Array<Record<string, unknown>>;
    const mine = listed.find((k) => k.id === created.id)!;
    expect(mine).toMatchObject({ prefix: `ssk_${created.id}_…`, name: 'agent one' });
    expect(mine).not.toHaveProperty('hash');
    expect(JSON.stringify(listed)).not.toContain(created.key);

    expect(await ok(['keys', 'revoke', created.id])).toMatch(new RegExp(`^revoked ${created.id} \\(at `));
    await eventually(() =>
      expect(client.loadContactContent('team-a', 'g', 'c')).rejects.toBeInstanceOf(AuthenticationError),
    );
    const after = JSON.parse(await ok(['keys', 'list', '--json'])) as Array<{ id: string; revokedAt?: string }>;
    expect(after.find((k) => k.id === created.id)?.revokedAt).toMatch(/^\d{4}-/);
  });

  it('prints the key for people, once', async () => {
    const out = await ok(['keys', 'create', '--read', '*']);
    expect(out).toMatch(
      /^key [0-9a-f]{12} created; it is shown only now, keep it secret:\n\nssk_[0-9a-f]{12}_\S{43}\n/,
    );
  });

  it('refuses bad use with the usage and not-found exit codes, and writes nothing', async () => {
    const before = (await storage.bucket(BUCKET).getFiles({ prefix: KEYS_OBJECT_PREFIX }))[0].length;
    const noScope = await spine(['keys', 'create', '--name', 'x']);
    expect(noScope.code).toBe(ExitCode.usage);
    expect(noScope.stderr).toMatch(/^spine: keys create needs at least one --read NETWORK or --write NETWORK/);
    expect((await spine(['keys', 'create', '--write', 'a/b'])).code).toBe(ExitCode.invalidId);
    expect((await spine(['keys', 'create', '--write', 'a', '--rate', 'fast'])).code).toBe(ExitCode.usage);
    expect((await spine(['keys', 'rotate'])).code).toBe(ExitCode.usage);
    expect((await spine(['keys', 'revoke'])).code).toBe(ExitCode.usage);
    const missing = await spine(['keys', 'revoke', '0123456789ab']);
    expect(missing.code).toBe(ExitCode.notFound);
    expect(missing.stderr).toMatch(/no key with id "0123456789ab"/);
    expect((await spine(['keys', 'revoke', 'not-an-id'])).code).toBe(ExitCode.invalidValue);
    expect((await storage.bucket(BUCKET).getFiles({ prefix: KEYS_OBJECT_PREFIX }))[0].length).toBe(before);
  });
});
