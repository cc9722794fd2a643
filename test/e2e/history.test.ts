/**
 * The event archive and `history` on the local mesh with its archiver (one mesh for the file):
 * the archive's layout and format, a contact's history against a model (both blend modes, a
 * redelivered event, a write that arrives with an older stamp, a group save), paging, the
 * gateway's scope, the CLI, and an archiver killed mid-stream losing nothing.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eventually } from 'super-spine/testing';
import { ApiKeys, GcsKeyRecords } from '../../gateway/keys';
import { startGateway, type Gateway } from '../../gateway/server';
import { RemoteStorage } from '../../shared/backends/remote';
import { decode, encode } from '../../shared/codec';
import { PermissionDeniedError } from '../../shared/errors';
import { createEvent } from '../../shared/events';
import { EventType, type AnySpineEvent } from '../../shared/events/types';
import type { HistoryEntry, HistoryPage } from '../../shared/history/history';
import { batchStartOf } from '../../shared/history/layout';
import { formatStamp } from '../../shared/hlc';
import { createMemoryLogger } from '../helpers/emulators';
import { groupState } from '../helpers/gcs';
import { archiveOf, publishEvent } from '../helpers/archive';
import { useLocalMesh } from '../helpers/mesh';
import { cliEnv, runSpine, writeMeshEnv, type CliResult } from '../helpers/spine-cli';

jest.setTimeout(120_000);

const mesh = useLocalMesh({ archiver: { maxBatchMs: 200 } });
const run = randomUUID().slice(0, 8);

const archive = () => archiveOf(mesh);

const publish = (event: AnySpineEvent) => publishEvent(mesh, event);

/** What the model says of each write: the fields history reports, oldest first. */
type Expected = Pick<HistoryEntry, 'kind' | 'writerId' | 'outcome'> &
  Partial<Pick<HistoryEntry, 'content' | 'blendMode'>>;

const summary = (entry: HistoryEntry): Expected => ({
  kind: entry.kind,
  writerId: entry.writerId,
  outcome: entry.outcome,
  ...(entry.kind === 'contact-write' ? { content: entry.content, blendMode: entry.blendMode } : {}),
});

describe('the archive', () => {
  test('every event is archived once the archiver ran, in the layout and text format of a Cloud Storage subscription', async () => {
    const network = `archive-${run}`;
    const client = mesh.client();
    const written = Array.from({ length: 30 }, (_, i) => ({ contact: `c${i % 7}`, content: { i } }));
    await Promise.all(written.map((w) => client.saveContactContent(network, 'g', w.contact, w.content)));
    await client.flush();
    const reader = archive();
    const events = await eventually(
      async () => {
        const found = await reader.read({ networkId: network });
        const writes = found.flatMap((event) =>
          event.type === EventType.ContactWritten
            ? [event.data.content]
            : event.type === EventType.ContactsWritten
              ? event.data.writes.map((w) => w.content)
              : [],
        );
        expect(writes.map((content) => (content as { i: number }).i).sort((a, b) => a - b)).toEqual(
          written.map((_, i) => i),
        );
        return found;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(events.length).toBeGreaterThan(0);
    // Layout: prefix, time of the batch, uuid, suffix; format: each message's data on its own line.
    const objects = await reader.listObjects();
    expect(objects.length).toBeGreaterThan(0);
    for (const object of objects) {
      expect(object.name).toMatch(
        /^archive\/contact-writes\/\d{4}-\d{2}-\d{2}\/\d{2}\/\d{2}-\d{2}_[0-9a-f-]{36}\.jsonl$/,
      );
      expect(batchStartOf(mesh.mesh.topology.archive, object.name)).toEqual(object.batchStart);
    }
    const [bytes] = await mesh.storage.bucket(mesh.mesh.settings.bucket).file(objects[0]!.name).download();
    const lines = bytes.toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    for (const line of lines) expect(encode(decode(line))).toBe(line);
  });
});

describe('history', () => {
  const network = `history-${run}`;
  let expected: Expected[];

  beforeAll(async () => {
    const client = mesh.client({ writerId: 'historian' });
    const writer = client.sessionWriterId;
    const g = 'g';
    // accept-last: each newer write wins.
    for (const content of ['a', 'b', 'c']) await client.saveContactContent(network, g, 'c1', content);
    // merge: equal values merge to themselves, a different scalar is a contradiction.
    await client.saveContactContent(network, g, 'c2', 1, { blendMode: 'merge' });
    await client.saveContactContent(network, g, 'c2', 1);
    await client.saveContactContent(network, g, 'c2', 2);
    await client.flush();
    // Another writer's write, delivered twice (a redelivery): in history once.
    const now = Date.now();
    const redelivered = createEvent(
      EventType.ContactWritten,
      {
        networkId: network,
        groupId: g,
        contactId: 'c1',
        content: 'd',
        writerId: 'replayer',
        seq: 1,
        stamp: formatStamp({ wallTime: now + 1, logical: 0, writerId: 'replayer' }),
      },
      { source: '//test', time: new Date(now + 1) },
    ) as AnySpineEvent;
    await publish(redelivered);
    await publish(redelivered);
    // A write made long ago that arrives now: its older stamp loses to the newer ones.
    await publish(
      createEvent(
        EventType.ContactWritten,
        {
          networkId: network,
          groupId: g,
          contactId: 'c1',
          content: 'stale',
          writerId: 'latecomer',
          seq: 1,
          stamp: formatStamp({ wallTime: now - 3_600_000, logical: 0, writerId: 'latecomer' }),
        },
        { source: '//test', time: new Date(now + 2) },
      ) as AnySpineEvent,
    );
    await new Promise((resolve) => setTimeout(resolve, 5));
    await client.saveGroupState(network, g, groupState(g, { c1: 'saved' }));
    await client.flush();
    expected = [
      { kind: 'contact-write', writerId: writer, content: 'a', blendMode: 'accept-last', outcome: 'changed' },
      { kind: 'contact-write', writerId: writer, content: 'b', blendMode: 'accept-last', outcome: 'changed' },
      { kind: 'contact-write', writerId: writer, content: 'c', blendMode: 'accept-last', outcome: 'changed' },
      { kind: 'contact-write', writerId: 'replayer', content: 'd', blendMode: 'accept-last', outcome: 'changed' },
      {
        kind: 'contact-write',
        writerId: 'latecomer',
        content: 'stale',
        blendMode: 'accept-last',
        outcome: 'unchanged',
      },
      { kind: 'group-saved', writerId: writer, outcome: 'changed' },
    ].reverse() as Expected[];
    await eventually(
      async () => expect((await client.history(network, g, 'c1')).entries.map(summary)).toEqual(expected),
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  });

  test("a contact's history, newest first, equals the model; the merge contact's shows its contradiction", async () => {
    const client = mesh.client();
    const page = await client.history(network, 'g', 'c1');
    expect(page.entries.map(summary)).toEqual(expected);
    expect(page.cursor).toBeUndefined();
    const times = page.entries.map((entry) => entry.time.getTime());
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const merged = await client.history(network, 'g', 'c2');
    // The group's save is in every contact's history: it sets the group's contacts.
    expect(merged.entries.map((entry) => [entry.kind, entry.content, entry.blendMode, entry.outcome])).toEqual([
      ['group-saved', undefined, undefined, 'changed'],
      ['contact-write', 2, 'merge', 'contradiction'],
      ['contact-write', 1, 'merge', 'changed'],
      ['contact-write', 1, 'merge', 'changed'],
    ]);
    // The group's history holds both contacts' writes and the save.
    expect((await client.history(network, 'g')).entries).toHaveLength(expected.length + 3);
    // What the mesh materialized agrees with the last entries.
    expect(await client.loadContactContent(network, 'g', 'c1')).toBe('saved');
  });

  test('pages follow the cursor without overlap; from and to bound the entries; bad options are refused', async () => {
    const client = mesh.client();
    const all = (await client.history(network, 'g')).entries;
    const paged: HistoryEntry[] = [];
    let page: HistoryPage = await client.history(network, 'g', undefined, { limit: 3 });
    for (;;) {
      paged.push(...page.entries);
      if (!page.cursor) break;
      page = await client.history(network, 'g', undefined, { limit: 3, cursor: page.cursor });
    }
    expect(paged).toEqual(all);
    const middle = all[3]!.time;
    const since = await client.history(network, 'g', undefined, { from: middle });
    expect(since.entries).toEqual(all.filter((entry) => entry.time.getTime() >= middle.getTime()));
    const until = await client.history(network, 'g', undefined, { to: middle.toISOString() });
    expect(until.entries).toEqual(all.filter((entry) => entry.time.getTime() <= middle.getTime()));
    await expect(client.history(network, 'g', undefined, { cursor: 'nonsense' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      client.history(network, 'g', undefined, { from: '2026-02-01', to: '2026-01-01' }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(client.history(network, 'g', undefined, { limit: 0 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(client.history(network, undefined, 'c1')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  describe('through the gateway', () => {
    let gateway: Gateway;
    let keys: ApiKeys;
    const clients: RemoteStorage[] = [];
    beforeAll(async () => {
      keys = new ApiKeys(new GcsKeyRecords(mesh.storage, mesh.mesh.settings.bucket));
      gateway = await startGateway({
        storage: mesh.client({ writerId: 'gateway' }),
        keys,
        closeStorage: true,
        logger: createMemoryLogger(),
      });
    });
    afterAll(async () => {
      await Promise.all(clients.map((client) => client.close()));
      await gateway?.stop();
    });
    const remote = (apiKey: string) => {
      const client = new RemoteStorage({ url: gateway.url, apiKey, logger: createMemoryLogger() });
      clients.push(client);
      return client;
    };

    test("RemoteStorage.history answers within the key's networks and is refused outside them", async () => {
      const { key } = await keys.create({ scopes: { [network]: 'read' } });
      const client = remote(key);
      const page = await client.history(network, 'g', 'c1');
      expect(page.entries.map(summary)).toEqual(expected);
      expect(page.entries[0]!.time).toBeInstanceOf(Date);
      const { key: other } = await keys.create({ scopes: { [`elsewhere-${run}`]: 'read-write' } });
      await expect(remote(other).history(network, 'g', 'c1')).rejects.toBeInstanceOf(PermissionDeniedError);
    });
  });

  describe('spine history', () => {
    let dataDir: string;
    beforeAll(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'spine-history-'));
      await writeMeshEnv(dataDir, mesh.mesh.env);
    });
    afterAll(async () => {
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    function spine(args: string[]): Promise<CliResult> {
      return runSpine(args, { env: cliEnv(dataDir) });
    }

    test('prints a table newest first, --json the entries, --since bounds them, a bad time is a usage error', async () => {
      const table = await spine(['history', network, 'g', 'c1']);
      expect(table).toMatchObject({ code: 0, stderr: '' });
      const lines = table.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^TIME\s+WHERE\s+WRITER\s+BLEND\s+CONTENT\s+OUTCOME$/);
      expect(lines.slice(1).map((line) => line.split(/\s+/).pop())).toEqual(expected.map((entry) => entry.outcome));
      expect(lines[1]).toMatch(/\(group saved\)\s+changed$/);
      expect(lines[2]).toMatch(/^\S+\s+g\/c1\s+latecomer\s+accept-last\s+"stale"\s+unchanged$/);

      const json = await spine(['history', network, 'g', 'c1', '--json', '--limit', '2']);
      expect(json.code).toBe(0);
      const page = JSON.parse(json.stdout) as { entries: Array<{ outcome: string }>; cursor?: string };
      expect(page.entries.map((entry) => entry.outcome)).toEqual(expected.slice(0, 2).map((entry) => entry.outcome));
      expect(typeof page.cursor).toBe('string');

      const future = await spine(['history', network, '--since', '2099-01-01T00:00:00Z']);
      expect(future).toMatchObject({ code: 0, stdout: 'no history in the archive for this range\n' });
      const bad = await spine(['history', network, '--since', 'yesterday']);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/--since must be an ISO 8601 time/);
    });
  });
});

describe('the archiver process', () => {
  test('killed mid-stream, it loses nothing it acknowledged: every write is archived once it runs again', async () => {
    const network = `archiver-kill-${run}`;
    const archiver = mesh.mesh.archiver!;
    const firstPid = archiver.pid;
    const client = mesh.client({ bundling: false });
    const reader = archive();
    const total = 1_500;
    const archivedWrites = async () =>
      (await reader.read({ networkId: network })).flatMap((event) =>
        event.type === EventType.ContactWritten ? [event.data.content as number] : [],
      );
    let accepted = 0;
    let killed: () => void = () => undefined;
    const afterKill = new Promise<void>((resolve) => (killed = resolve));
    const writing = (async () => {
      for (let i = 0; i < total; i += 50) {
        // The second half is written after the kill, while the archiver is down or restarting.
        if (i === total / 2) await afterKill;
        await Promise.all(
          Array.from({ length: 50 }, (_, k) => client.saveContactContent(network, 'g', `c${(i + k) % 50}`, i + k)),
        );
        accepted = i + 50;
        // Paced, so the kill lands while writes are still coming.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    // Killed once part of the stream is archived (written and acknowledged) and more is arriving.
    await eventually(async () => expect((await archivedWrites()).length).toBeGreaterThan(0), {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    await archiver.kill();
    const acceptedAtKill = accepted;
    killed();
    await writing;
    await eventually(
      async () => {
        const contents = await archivedWrites();
        expect(new Set(contents).size).toBe(total);
        expect(contents.length).toBe(total);
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(acceptedAtKill).toBeLessThan(total);
    expect(archiver.pid).not.toBe(firstPid);
    expect(archiver.restarts).toBeGreaterThanOrEqual(1);
  }, 150_000);
});
