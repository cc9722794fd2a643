/**
 * Issue 17, finding 5, against the real thing: the gateway as its own process (gateway/main.ts)
 * on the local mesh (Pub/Sub emulator, Storage emulator, functions). A read-only key opens 20
 * WebSockets × 100 subscriptions; the emulator must gain at most one Pub/Sub subscription per
 * network, the gateway's memory must stay bounded, and meanwhile another client's write and the
 * health canary succeed. Afterwards the pipeline still flows to subscribers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import WebSocket from 'ws';
import { eventually } from 'super-spine/testing';
import { ApiKeys, GcsKeyRecords } from '../../gateway/keys';
import { RemoteStorage } from '../../shared/backends/remote';
import { PermissionDeniedError } from '../../shared/errors';
import { CANARY_NETWORK, REGISTRY_NETWORK, AGENTS_GROUP } from '../../shared/system';
import { createMemoryLogger } from '../helpers/emulators';
import { useLocalMesh } from '../helpers/mesh';
import { REPO_ROOT } from '../helpers/node-process';

jest.setTimeout(240_000);

let gatewayProcess: ChildProcess | undefined;
let gatewayUrl: string;
const sockets: WebSocket[] = [];
const clients: RemoteStorage[] = [];

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
}

async function watchSubscriptions(): Promise<string[]> {
  const [subscriptions] = await mesh.pubsub.getSubscriptions();
  return subscriptions
    .map((s) => s.name)
    .filter((name) => name.includes(`/subscriptions/${mesh.mesh.settings.topicPrefix}watch-`));
}

// Declared before the mesh's hooks, so the gateway stops first: stopped after the mesh, it waits out its clients' retries.
afterAll(async () => {
  for (const socket of sockets) socket.terminate();
  await Promise.all(clients.map((c) => c.close()));
  if (gatewayProcess && gatewayProcess.exitCode === null) {
    const exited = new Promise((resolve) => gatewayProcess!.once('exit', resolve));
    gatewayProcess.kill('SIGTERM');
    await exited;
  }
});

const mesh = useLocalMesh();

beforeAll(async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...mesh.mesh.env, PORT: '0', SPINE_LOG_LEVEL: 'INFO', METADATA_SERVER_DETECTION: 'none' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  gatewayProcess = child;
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await eventually(() => expect(output).toMatch(/"url":"http:\/\/127\.0\.0\.1:\d+"/), { timeoutMs: 60_000 });
  gatewayUrl = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)![1]!;
}, 90_000);

function remote(apiKey: string): RemoteStorage {
  const client = new RemoteStorage({
    url: gatewayUrl,
    apiKey,
    reconnectMinMs: 50,
    reconnectMaxMs: 500,
    logger: createMemoryLogger(),
  });
  clients.push(client);
  return client;
}

test('20 sockets × 100 subscriptions of a read-only key cost one Pub/Sub subscription per network; another write and the canary succeed meanwhile; the pipeline still flows', async () => {
  const keys = new ApiKeys(new GcsKeyRecords(mesh.storage, mesh.mesh.settings.bucket));
  // The default rate limit (50/s), as in the finding.
  const reader = (await keys.create({ name: 'flood', scopes: { '*': 'read' } })).key;
  const writer = (await keys.create({ name: 'other', scopes: { '*': 'read-write' }, rateLimit: 1_000 })).key;
  const networks = Array.from({ length: 5 }, (_, i) => `flood-${i}-${randomUUID().slice(0, 6)}`);
  const before = await watchSubscriptions();
  const rssBefore = await rssKb(gatewayProcess!.pid!);

  const answers = { subscribed: 0, refused: new Map<string, number>() };
  for (let s = 0; s < 20; s++) {
    const socket = new WebSocket(`${gatewayUrl.replace('http', 'ws')}/v1/subscribe`, {
      headers: { authorization: `Bearer ${reader}` },
    });
    sockets.push(socket);
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string; error?: { code: string } };
      if (message.type === 'subscribed') answers.subscribed += 1;
      else if (message.type === 'error')
        answers.refused.set(message.error!.code, (answers.refused.get(message.error!.code) ?? 0) + 1);
    });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
  }
  // Sent at the key's rate (50/s, after the upgrades' tokens came back), so every one is judged on the subscription bounds, not the rate limit.
  // Each batch of 50 waits until the gateway has answered the one before and then 1.05 s more, so its tokens are back
  // whenever it arrives: on a fixed timetable a batch sent late and the next on time land under 1 s apart and some are refused.
  const answered = () => answers.subscribed + [...answers.refused.values()].reduce((a, b) => a + b, 0);
  const started = performance.now();
  const total = 20 * 100;
  for (let i = 0; i < total; i++) {
    if (i % 50 === 0) {
      await eventually(() => expect(answered()).toBeGreaterThanOrEqual(i), { timeoutMs: 60_000, intervalMs: 20 });
      const due = performance.now() + (i === 0 ? 1_100 : 1_050);
      await eventually(() => expect(performance.now()).toBeGreaterThanOrEqual(due), {
        timeoutMs: 10_000,
        intervalMs: 20,
      });
    }
    sockets[i % 20]!.send(
      JSON.stringify({ type: 'subscribe', sub: `s${i}`, path: `${networks[i % networks.length]}/group-${i}` }),
    );
  }

  // Meanwhile: another client's write goes through, and the health canary passes.
  const other = remote(writer);
  await other.saveContactContent('flood-other', 'g', 'c', 'written during the flood');
  const health = await fetch(mesh.mesh.settings.functionUrls.health!, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  const report = (await health.json()) as { checks: { canary: { ok: boolean } } };
  expect(report.checks.canary.ok).toBe(true);

  await eventually(
    () => expect(answers.subscribed + [...answers.refused.values()].reduce((a, b) => a + b, 0)).toBe(total),
    { timeoutMs: 60_000 },
  );
  const during = await watchSubscriptions();
  const rssAfter = await rssKb(gatewayProcess!.pid!);
  const created = during.filter((name) => !before.includes(name)).length;
  console.log(
    `gateway subscription flood: ${total} subscribe messages on 20 sockets in ${((performance.now() - started) / 1000).toFixed(1)} s: ${answers.subscribed} subscribed, refused ${JSON.stringify(Object.fromEntries(answers.refused))}; ` +
      `Pub/Sub subscriptions created ${created} (before ${before.length}); gateway RSS ${(rssBefore / 1024).toFixed(0)} MB -> ${(rssAfter / 1024).toFixed(0)} MB`,
  );
  // One Pub/Sub subscription per network watched, whatever the number of sockets and paths.
  expect(created).toBeLessThanOrEqual(networks.length);
  // The default bound of 1000 subscriptions per key is what refuses the rest, with a typed error.
  expect(answers.subscribed).toBe(1_000);
  expect(answers.refused.get('LIMIT_EXCEEDED')).toBe(1_000);
  expect(rssAfter - rssBefore).toBeLessThan(200 * 1024);

  // The pipeline still flows: a write reaches the socket subscribed to its path.
  const seen: string[] = [];
  const watcher = remote(writer);
  await watcher.subscribe(`${networks[0]}/group-0`, (_state, change) => void seen.push(change.path));
  await other.saveContactContent(networks[0]!, 'group-0', 'c', 'after the flood');
  await eventually(() => expect(seen).toContain(`${networks[0]}/group-0`), { timeoutMs: 60_000 });
  expect(await other.loadContactContent('flood-other', 'g', 'c')).toBe('written during the flood');

  // Closing the sockets gives the Pub/Sub subscriptions back.
  for (const socket of sockets) socket.close();
  await watcher.close();
  await eventually(
    async () => expect((await watchSubscriptions()).filter((name) => !before.includes(name))).toEqual([]),
    { timeoutMs: 60_000 },
  );
});

test('a * key reaches neither the registry nor the canary through the gateway process', async () => {
  const keys = new ApiKeys(new GcsKeyRecords(mesh.storage, mesh.mesh.settings.bucket));
  const star = remote((await keys.create({ name: 'star', scopes: { '*': 'read-write' }, rateLimit: 1_000 })).key);
  await expect(
    star.saveContactContent(REGISTRY_NETWORK, AGENTS_GROUP, 'forged-agent', {
      agentId: 'forged-agent',
      status: 'ok',
      at: new Date().toISOString(),
    }),
  ).rejects.toBeInstanceOf(PermissionDeniedError);
  await expect(star.deleteNetwork(CANARY_NETWORK)).rejects.toBeInstanceOf(PermissionDeniedError);
  expect(await mesh.client().loadContactContent(REGISTRY_NETWORK, AGENTS_GROUP, 'forged-agent')).toBeNull();
});
