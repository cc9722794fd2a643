/**
 * The `spine` CLI end to end: every command runs as a real process (bin/spine.js, as `npx spine`
 * runs it) against a local mesh this file starts, found through a mesh.env in a temp data dir.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { eventually } from 'super-spine/testing';
import { decode } from '../../shared/codec';
import type { GroupState, NetworkState } from '../../shared/model';
import { ExitCode } from '../../cli/errors';
import { NETWORK_FILE_FORMAT, NETWORK_FILE_VERSION } from '../../cli/network-file';
import { useLocalMesh } from '../helpers/mesh';
import { cliEnv, runSpine, SPINE, writeMeshEnv, type CliResult } from '../helpers/spine-cli';

jest.setTimeout(120_000);

// Any dead letter makes the mesh unhealthy, so the dead letter the dlq test makes shows in health too.
const mesh = useLocalMesh({ functionsEnv: { SPINE_HEALTH_MAX_DEAD_LETTERS: '0' } });
const run = randomUUID().slice(0, 8);
let dataDir: string;

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return cliEnv(dataDir, extra);
}

function spine(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return runSpine(args, {
    env: options.env ?? cleanEnv(),
    ...(options.input !== undefined && { input: options.input }),
  });
}

/** Runs `spine …`, expects exit 0, and returns its stdout. */
async function ok(args: string[], options?: { env?: NodeJS.ProcessEnv; input?: string }): Promise<string> {
  const result = await spine(args, options);
  if (result.code !== 0) throw new Error(`spine ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

async function okJson<T = unknown>(args: string[]): Promise<T> {
  return JSON.parse(await ok([...args, '--json'])) as T;
}

/** The one line a failing command prints on stderr. */
function errorLine(result: CliResult): string {
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^spine: /);
  return lines[0]!;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'spine-cli-'));
  await writeMeshEnv(dataDir, mesh.mesh.env);
});

afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('put and get', () => {
  const network = `cli-put-${run}`;

  test('put --wait then get shows the value, in human and --json output', async () => {
    const put = await spine(['put', network, 'users/@alice', 'mood', '"happy"', '--wait']);
    expect(put).toMatchObject({ code: 0, stderr: '' });
    expect(put.stdout.trim()).toBe(`materialized ${network}/users/@alice mood`);

    expect((await ok(['get', network, 'users/@alice', 'mood'])).trim()).toBe('"happy"');
    expect(await okJson(['get', network, 'users/@alice', 'mood'])).toBe('happy');
    const group = await ok(['get', network, 'users/@alice']);
    expect(group).toMatch(/^mood\s+accept-last\s+"happy"$/m);
    const networkJson = decode<NetworkState>(await ok(['get', network, '--json']));
    expect([...networkJson.groups.keys()]).toEqual(['users/@alice']);
  });

  test('put without --wait returns once accepted; the value arrives; tagged and mergeable values keep their type', async () => {
    const put = await okJson(['put', network, 'g', 'when', '{"$type":"Date","iso":"2026-01-02T03:04:05.000Z"}']);
    expect(put).toEqual({ network, group: 'g', contact: 'when', status: 'accepted' });
    await ok(['put', network, 'g', 'tags', '{"_tag":"GrowSet","values":["a"]}', '--blend-mode', 'merge', '--wait']);
    await ok(['put', network, 'g', 'tags', '{"_tag":"GrowSet","values":["b"]}', '--wait']);
    const client = mesh.client();
    await eventually(
      async () =>
        expect(await client.loadContactContent(network, 'g', 'when')).toEqual(new Date('2026-01-02T03:04:05.000Z')),
      { timeoutMs: 20_000 },
    );
    expect(await client.loadContactContent(network, 'g', 'tags')).toEqual({
      _tag: 'GrowSet',
      values: new Set(['a', 'b']),
    });
    // --json is the codec's JSON, so it decodes back to the same value.
    expect(decode(await ok(['get', network, 'g', 'tags', '--json']))).toEqual({
      _tag: 'GrowSet',
      values: new Set(['a', 'b']),
    });
  });

  test('--wait that the mesh cannot meet in time exits 7', async () => {
    const result = await spine(['put', network, 'g', 'slow', '1', '--wait', '--timeout', '1']);
    expect(result.code).toBe(ExitCode.timeout);
    expect(errorLine(result)).toMatch(/^spine: timed out after 1 ms: 1 of 1 writes not materialized/);
  });

  test('a negative number goes after --', async () => {
    await ok(['put', network, 'g', 'n', '--wait', '--', '-1']);
    expect(await okJson(['get', network, 'g', 'n'])).toBe(-1);
  });
});

describe('ls and query', () => {
  const network = `cli-query-${run}`;

  beforeAll(async () => {
    const client = mesh.client();
    const group = (id: string, attributes: Record<string, unknown>): GroupState => ({
      group: { id, name: id, contactIds: [], wireIds: [], subgroupIds: [], boundaryContactIds: [], attributes },
      contacts: new Map(),
      wires: new Map(),
    });
    await client.saveGroupState(
      network,
      'adder',
      group('adder', {
        'bassline.author': 'alice',
        'bassline.type': 'gadget',
        'bassline.tags': ['math', 'core'],
        level: 3,
      }),
    );
    await client.saveGroupState(
      network,
      'logger',
      group('logger', { 'bassline.author': 'bob', 'bassline.type': 'gadget', 'bassline.tags': ['io'], level: 1 }),
    );
    await client.saveGroupState(
      network,
      'notes',
      group('notes', { 'bassline.author': 'alice', 'bassline.type': 'doc', owner: 'carol' }),
    );
    await client.flush();
  });

  test('ls lists networks, and the groups of one', async () => {
    const [networks, human, groups, groupsJson] = await Promise.all([
      okJson<Array<{ network: string; system: boolean }>>(['ls']),
      ok(['ls']),
      ok(['ls', network]),
      okJson<Array<{ group: string }>>(['ls', network]),
    ]);
    expect(networks).toContainEqual({ network, system: false });
    expect(human).toMatch(new RegExp(`^${network}\\b`, 'm'));
    expect(groups.split('\n')[0]).toMatch(/^GROUP\s+CONTACTS\s+WIRES\s+AUTHOR\s+TYPE\s+TAGS$/);
    expect(groups).toMatch(/^adder\s+0\s+0\s+alice\s+gadget\s+math,core$/m);
    expect(groupsJson.map((g) => g.group)).toEqual(['adder', 'logger', 'notes']);
  });

  test('query by tag, author, type and attribute', async () => {
    const ids = async (...criteria: string[]) =>
      (await okJson<Array<{ group: string }>>(['query', network, ...criteria])).map((g) => g.group);
    const [math, mathAndIo, byAlice, gadgets, level1, carolsByAlice, human] = await Promise.all([
      ids('--tag', 'math'),
      ids('--tag', 'math', '--tag', 'io'),
      ids('--author', 'alice'),
      ids('--type', 'gadget'),
      ids('--attr', 'level=1'),
      ids('--attr', 'owner=carol', '--author', 'alice'),
      ok(['query', network, '--type', 'doc']),
    ]);
    expect(math).toEqual(['adder']);
    expect(mathAndIo).toEqual([]);
    expect(byAlice).toEqual(['adder', 'notes']);
    expect(gadgets).toEqual(['adder', 'logger']);
    expect(level1).toEqual(['logger']);
    expect(carolsByAlice).toEqual(['notes']);
    expect(human).toMatch(/^notes\s+0\s+0\s+alice\s+doc/m);
  });
});

describe('watch', () => {
  test('streams a change made by put, and on SIGINT removes its subscription and exits 0', async () => {
    const network = `cli-watch-${run}`;
    const child = spawn(process.execPath, [SPINE, 'watch', network, '--json'], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('close', (code, signal) => resolve([code, signal])),
    );
    const watchSubscriptions = async () => {
      const [subscriptions] = await mesh.pubsub.getSubscriptions();
      return subscriptions.filter((s) => s.name.includes(`/subscriptions/${mesh.mesh.settings.topicPrefix}watch-`));
    };
    try {
      await eventually(() => expect(stderr).toContain(`watching ${network}`), { timeoutMs: 30_000, intervalMs: 50 });
      expect(await watchSubscriptions()).toHaveLength(1);

      await ok(['put', network, 'users/@bob', 'mood', '"curious"']);
      const change = await eventually(
        () => {
          const lines = stdout.trim().split('\n').filter(Boolean);
          expect(lines.length).toBeGreaterThan(0);
          return JSON.parse(lines[0]!) as { kind: string; path: string; state: unknown };
        },
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      expect(change).toMatchObject({ kind: 'updated', network, group: 'users/@bob', path: `${network}/users/@bob` });
      expect(decode<GroupState>(JSON.stringify(change.state)).contacts.get('mood')?.content).toBe('curious');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toEqual([0, null]);
    expect(stderr).toContain(`stopped watching ${network} (SIGINT)`);
    expect(await watchSubscriptions()).toHaveLength(0);
  });
});

describe('snapshot', () => {
  test('create, list, show, restore and delete round trip', async () => {
    const network = `cli-snap-${run}`;
    const client = mesh.client();
    await client.saveContactContent(network, 'g', 'c', 1, { wait: 'materialized' });
    const created = await okJson<{ snapshot: string; label: string }>([
      'snapshot',
      'create',
      network,
      '--label',
      'before',
    ]);
    expect(created).toMatchObject({ network, label: 'before' });
    const id = created.snapshot;

    const [listed, listedJson, shown] = await Promise.all([
      ok(['snapshot', 'list', network]),
      okJson<Array<{ id: string; label: string }>>(['snapshot', 'list', network]),
      ok(['snapshot', 'show', network, id]),
    ]);
    expect(listed).toMatch(new RegExp(`^${id}\\s+\\S+Z\\s+\\d+ B\\s+before$`, 'm'));
    expect(listedJson[0]).toMatchObject({ id, label: 'before' });
    expect(shown).toMatch(/^g\s+1\s+0/m);

    await client.saveContactContent(network, 'g', 'c', 2);
    await client.saveContactContent(network, 'later', 'c', 3);
    await client.flush();
    expect(await okJson(['snapshot', 'restore', network, id])).toEqual({ network, snapshot: id, restored: true });
    const [restored, later] = await Promise.all([okJson(['get', network, 'g', 'c']), spine(['get', network, 'later'])]);
    expect(restored).toBe(1);
    expect(later.code).toBe(ExitCode.notFound);

    expect((await ok(['snapshot', 'delete', network, id])).trim()).toBe(`deleted snapshot ${id} of ${network}`);
    expect((await ok(['snapshot', 'list', network])).trim()).toBe(`no snapshots of ${network}`);
    const gone = await spine(['snapshot', 'show', network, id]);
    expect(gone.code).toBe(ExitCode.notFound);
    expect(errorLine(gone)).toContain('does not exist');
  });
});

describe('health and heartbeat', () => {
  test('heartbeat then health: healthy (exit 0) and the agent is online', async () => {
    const agent = `agent-${run}`;
    expect(await okJson(['heartbeat', agent, 'busy', '--wait'])).toEqual({
      agentId: agent,
      status: 'busy',
      wait: 'materialized',
    });
    const report = await okJson<{
      status: string;
      checks: { agents: Array<{ agentId: string; status: string; online: boolean }> };
    }>(['health']);
    expect(report.status).toBe('healthy');
    expect(report.checks.agents).toContainEqual(
      expect.objectContaining({ agentId: agent, status: 'busy', online: true }),
    );

    const human = await spine(['health']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^mesh healthy \(checked /);
    expect(human.stdout).toMatch(/^canary\s+ok\s+materialized in \d+ ms/m);
    expect(human.stdout).toMatch(new RegExp(`^${agent}\\s+busy\\s+\\S+\\s+\\d+ s\\s+yes$`, 'm'));

    // Without the function's URL: the report the health run just stored.
    const stored = await spine(['health', '--stored', '--json']);
    expect(stored.code).toBe(0);
    expect(JSON.parse(stored.stdout)).toMatchObject({ status: 'healthy' });
  });
});

describe('dlq', () => {
  test('a malformed event is listed as a dead letter and replayed', async () => {
    const marker = randomUUID();
    const topic = mesh.pubsub.topic(mesh.mesh.topology.topics.contactWrites.name, { messageOrdering: true });
    await topic.publishMessage({
      data: Buffer.from(`{"not":"an event","marker":"${marker}"}`),
      attributes: { path: `bad/${marker}` },
      orderingKey: `bad/${marker}`,
    });

    type Letter = { id: string; attributes: Record<string, string>; replayedAt?: string };
    const letter = await eventually(
      async () => {
        const found = (await okJson<Letter[]>(['dlq', 'list'])).find((l) => l.attributes.path === `bad/${marker}`);
        expect(found).toBeDefined();
        return found!;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(await ok(['dlq', 'list'])).toMatch(
      new RegExp(`^${letter.id}\\s+\\S+Z\\s+materialize\\s+bad/${marker}\\s+malformed event envelope`, 'm'),
    );

    const replayed = await okJson<{ id: string; topic: string }>(['dlq', 'replay', letter.id]);
    expect(replayed).toMatchObject({ id: letter.id, topic: mesh.mesh.topology.topics.contactWrites.name });
    expect(
      (await okJson<Letter[]>(['dlq', 'list', '--replayed'])).find((l) => l.id === letter.id)?.replayedAt,
    ).toBeDefined();
    // Still malformed: replayed, it is refused again under a new message id.
    await eventually(
      async () =>
        expect(
          (await okJson<Letter[]>(['dlq', 'list'])).filter(
            (l) => l.attributes.path === `bad/${marker}` && l.id !== letter.id,
          ),
        ).toHaveLength(1),
      {
        timeoutMs: 30_000,
        intervalMs: 500,
      },
    );

    const unhealthy = await spine(['health']);
    expect(unhealthy.code).toBe(ExitCode.unhealthy);
    expect(unhealthy.stdout).toMatch(/^mesh unhealthy \(checked /);
    expect(unhealthy.stdout).toMatch(/^dead letters\s+FAIL\s+[1-9]\d* waiting$/m);

    const missing = await spine(['dlq', 'replay', 'no-such-letter']);
    expect(missing.code).toBe(ExitCode.notFound);
    expect(errorLine(missing)).toBe('spine: dead letter "no-such-letter" does not exist');
  });
});

describe('export and import', () => {
  test('export then import into a new network id gives the same state; an existing network needs --replace', async () => {
    const source = `cli-export-${run}`;
    const copy = `cli-import-${run}`;
    const client = mesh.client();
    await client.saveContactContent(source, 'a', 'x', { deep: { list: [1, 2] } });
    await client.saveContactContent(source, 'a', 'set', new Set([1, 2]));
    await client.saveContactContent(source, 'b/c', 'when', new Date('2026-01-02T00:00:00.000Z'));
    await client.flush();
    const file = path.join(dataDir, 'export.json');
    expect(await okJson(['export', source, file])).toEqual({ network: source, file, groups: 2, contacts: 3 });
    const written = JSON.parse(await readFile(file, 'utf8')) as {
      format: string;
      version: number;
      network: string;
      groups: unknown[];
    };
    expect(written).toMatchObject({ format: NETWORK_FILE_FORMAT, version: NETWORK_FILE_VERSION, network: source });
    expect(written.groups).toHaveLength(2);

    expect(await okJson(['import', file, '--network', copy])).toEqual({
      network: copy,
      groups: 2,
      contacts: 3,
      from: file,
    });
    const contents = (state: NetworkState) =>
      [...state.groups.values()].map((g) => [g.group, [...g.contacts.values()], [...g.wires.values()]]);
    const [original, imported] = (await Promise.all([ok(['get', source, '--json']), ok(['get', copy, '--json'])])).map(
      (text) => decode<NetworkState>(text),
    ) as [NetworkState, NetworkState];
    expect(contents(imported)).toEqual(contents(original));
    expect(imported.rootGroupId).toBe(original.rootGroupId);

    // Export to stdout, import from stdin.
    const viaPipe = `cli-pipe-${run}`;
    await ok(['import', '-', '--network', viaPipe], { input: await ok(['export', source]) });
    expect(contents(decode<NetworkState>(await ok(['get', viaPipe, '--json'])))).toEqual(contents(original));

    await client.saveContactContent(copy, 'a', 'x', 'changed', { wait: 'materialized' });
    const refused = await spine(['import', file, '--network', copy]);
    expect(refused.code).toBe(ExitCode.failed);
    expect(errorLine(refused)).toContain('pass --replace');
    expect(await okJson(['get', copy, 'a', 'x'])).toBe('changed');
    await ok(['import', file, '--network', copy, '--replace']);
    expect(await okJson(['get', copy, 'a', 'x'])).toEqual({ deep: { list: [1, 2] } });
  });

  test('a file that is not a network file is refused and nothing is written', async () => {
    const target = `cli-bad-import-${run}`;
    const broken = path.join(dataDir, 'broken.json');
    await writeFile(broken, '{"format":"super-spine/network","version":1,');
    const badJson = await spine(['import', broken, '--network', target]);
    expect(badJson.code).toBe(ExitCode.invalidValue);
    expect(errorLine(badJson)).toMatch(/is not valid JSON at position 44/);

    const future = path.join(dataDir, 'future.json');
    await writeFile(
      future,
      JSON.stringify({
        format: NETWORK_FILE_FORMAT,
        version: 99,
        network: target,
        rootGroupId: 'r',
        currentGroupId: 'r',
        groups: [],
      }),
    );
    const unsupported = await spine(['import', future]);
    expect(unsupported.code).toBe(ExitCode.invalidValue);
    expect(errorLine(unsupported)).toContain('version 99 is not supported');
    expect((await spine(['get', target])).code).toBe(ExitCode.notFound);
  });
});

describe('errors', () => {
  const network = `cli-errors-${run}`;

  test('a bad id exits 3 with one line and writes nothing', async () => {
    const [result, badGroup, badPath] = await Promise.all([
      spine(['put', 'a/b', 'g', 'c', '1']),
      spine(['put', network, 'g//h', 'c', '1']),
      spine(['watch', `${network}/../x`]),
    ]);
    expect(result.code).toBe(ExitCode.invalidId);
    expect(errorLine(result)).toBe('spine: invalid network id "a/b": must not contain "/"');
    expect(badGroup.code).toBe(ExitCode.invalidId);
    expect(badPath.code).toBe(ExitCode.invalidId);
    expect(await okJson<Array<{ network: string }>>(['ls'])).not.toContainEqual(
      expect.objectContaining({ network: 'a' }),
    );
  });

  test('bad JSON exits 4 naming the position, and writes nothing', async () => {
    const [result, bare] = await Promise.all([
      spine(['put', network, 'g', 'c', '{"a":1,}']),
      spine(['put', network, 'g', 'c', 'happy']),
    ]);
    expect(result.code).toBe(ExitCode.invalidValue);
    expect(errorLine(result)).toMatch(/^spine: the value is not valid JSON at position 7: /);
    expect(errorLine(bare)).toBe(
      `spine: the value is not valid JSON at position 0: unexpected "h" (to store the string, quote it as JSON: '"happy"')`,
    );
    expect((await spine(['get', network])).code).toBe(ExitCode.notFound);
  });

  test('a value nested 60,000 deep exits 4 with one line, not a stack overflow, and writes nothing; a normal put still works', async () => {
    const deepNetwork = `${network}-deep`;
    const [deep, tooDeepForContent] = await Promise.all([
      spine(['put', deepNetwork, 'g', 'c', '['.repeat(60_000) + ']'.repeat(60_000)]),
      spine(['put', deepNetwork, 'g', 'c', '['.repeat(300) + ']'.repeat(300)]),
    ]);
    expect(deep.code).toBe(ExitCode.invalidValue);
    expect(errorLine(deep)).toBe(
      'spine: the value nests more than 910 levels deep; values may nest at most 256 levels',
    );
    expect(deep.stderr).not.toContain('Maximum call stack');
    expect(tooDeepForContent.code).toBe(ExitCode.invalidValue);
    expect(errorLine(tooDeepForContent)).toMatch(
      /^spine: cannot serialize value at \$(\[0\])+: the value nests more than 256 levels deep$/,
    );
    expect((await spine(['get', deepNetwork])).code).toBe(ExitCode.notFound);
    await ok(['put', deepNetwork, 'g', 'c', '[[1]]', '--wait']);
    expect(await okJson(['get', deepNetwork, 'g', 'c'])).toEqual([[1]]);
  });

  test('usage errors exit 2', async () => {
    const [unknown, missing, ...others] = await Promise.all([
      spine(['frobnicate']),
      spine(['put', network, 'g']),
      spine(['get', network, '--bogus']),
      spine(['snapshot', 'explode', network]),
      spine(['put', network, 'g', 'c', '1', '--blend-mode', 'sometimes']),
      spine(['emulators', '--pubsub-port', 'eighty']),
    ]);
    expect(unknown.code).toBe(ExitCode.usage);
    expect(errorLine(unknown)).toMatch(/^spine: unknown command "frobnicate"; commands: put, get, ls/);
    expect(missing.code).toBe(ExitCode.usage);
    expect(errorLine(missing)).toMatch(/^spine: missing <contact> <json> \(usage: spine put/);
    expect(others.map((r) => r.code)).toEqual([ExitCode.usage, ExitCode.usage, ExitCode.usage, ExitCode.usage]);
    const help = await spine(['--help']);
    expect(help.code).toBe(0);
    for (const command of [
      'put',
      'get',
      'ls',
      'query',
      'watch',
      'snapshot',
      'health',
      'heartbeat',
      'dlq',
      'keys',
      'export',
      'import',
      'emulators',
      'dev',
    ]) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
  });

  test('an unreachable mesh exits 6 within seconds, naming the host and suggesting npm start', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const env = cleanEnv({ PUBSUB_EMULATOR_HOST: `127.0.0.1:${closedPort}` });
    const result = await spine(['put', network, 'g', 'c', '1'], { env });
    expect(result.code).toBe(ExitCode.unreachable);
    expect(errorLine(result)).toMatch(
      new RegExp(
        `^spine: cannot reach the Pub/Sub emulator at 127\\.0\\.0\\.1:${closedPort} \\(ECONNREFUSED; .*\\): is the mesh running\\? Start it with \`npm start\`$`,
      ),
    );
    expect(result.ms).toBeLessThan(5_000);

    const noMesh = await spine(['ls'], { env: cleanEnv({ SPINE_DATA_DIR: path.join(dataDir, 'nothing-here') }) });
    expect(noMesh.code).toBe(ExitCode.unreachable);
    expect(errorLine(noMesh)).toContain('mesh.env does not exist');
    expect((await spine(['get', network])).code).toBe(ExitCode.notFound);
  });

  test('flags win over the environment, which wins over mesh.env', async () => {
    // A mesh.env that says the mesh is elsewhere; the environment corrects it.
    const stale = await mkdtemp(path.join(os.tmpdir(), 'spine-cli-stale-'));
    try {
      await writeFile(
        path.join(stale, 'mesh.env'),
        `PUBSUB_EMULATOR_HOST=127.0.0.1:1\nSTORAGE_EMULATOR_HOST=http://127.0.0.1:1\nSPINE_BUCKET=${mesh.mesh.settings.bucket}\n`,
      );
      expect((await spine(['ls'], { env: cleanEnv({ SPINE_DATA_DIR: stale }) })).code).toBe(ExitCode.unreachable);
      const fromEnv = cleanEnv({
        SPINE_DATA_DIR: stale,
        PUBSUB_EMULATOR_HOST: mesh.mesh.env.PUBSUB_EMULATOR_HOST!,
        STORAGE_EMULATOR_HOST: mesh.mesh.env.STORAGE_EMULATOR_HOST!,
      });
      expect(await ok(['ls', '--json'], { env: fromEnv })).toContain(`cli-put-${run}`);
      // --data-dir wins over SPINE_DATA_DIR.
      expect(await ok(['ls', '--json', '--data-dir', dataDir], { env: cleanEnv({ SPINE_DATA_DIR: stale }) })).toContain(
        `cli-put-${run}`,
      );
    } finally {
      await rm(stale, { recursive: true, force: true });
    }
  });
});
