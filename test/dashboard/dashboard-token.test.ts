/**
 * The dashboard's API token without a browser: the whole local mesh, the dashboard server on a
 * free port, and plain HTTP. Every API route and the event stream answer 401 without the token
 * (nothing is read or changed); with it, by header or `?token=`, they answer; the page and its
 * assets need none. The page itself, opened at the printed URL, is dashboard.test.ts.
 */
import { startDashboard, type Dashboard } from '../../dashboard/server';
import { createMemoryLogger } from '../helpers/emulators';
import { useLocalMesh } from '../helpers/mesh';

jest.setTimeout(120_000);

const NETWORK = 'dash-token-net';
let dashboard: Dashboard;

// Declared before the mesh's hooks, so it runs first: a dashboard stopped after the mesh waits out its clients' retries.
afterAll(async () => {
  await dashboard?.stop();
});

const mesh = useLocalMesh();

beforeAll(async () => {
  await mesh.client().saveContactContent(NETWORK, 'g', 'c', 'v', { wait: 'materialized' });
  dashboard = await startDashboard({ env: mesh.mesh.env, port: 0, healthIntervalMs: 0, logger: createMemoryLogger() });
}, 60_000);

test('the URL npm start prints carries a random token per start, and SPINE_DASHBOARD_TOKEN sets it', async () => {
  expect(dashboard.url).toBe(`${dashboard.baseUrl}?token=${dashboard.token}`);
  expect(dashboard.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
  const given = await startDashboard({
    env: { ...mesh.mesh.env, SPINE_DASHBOARD_TOKEN: 'a-token-set-by-the-user' },
    port: 0,
    healthIntervalMs: 0,
    logger: createMemoryLogger(),
  });
  try {
    expect(given.token).toBe('a-token-set-by-the-user');
    expect((await fetch(new URL('api/overview?token=a-token-set-by-the-user', given.baseUrl))).status).toBe(200);
    expect((await fetch(new URL(`api/overview?token=${dashboard.token}`, given.baseUrl))).status).toBe(401);
  } finally {
    await given.stop();
  }
  await expect(
    startDashboard({
      env: { ...mesh.mesh.env, SPINE_DASHBOARD_TOKEN: 'short' },
      port: 0,
      logger: createMemoryLogger(),
    }),
  ).rejects.toThrow('SPINE_DASHBOARD_TOKEN');
});

test('the API and the event stream answer 401 without the token, and a refused snapshot request creates nothing', async () => {
  const api = (route: string, init: RequestInit = {}) => fetch(new URL(`api/${route}`, dashboard.baseUrl), init);
  const json = { 'content-type': 'application/json' };
  const before = (await mesh.client().listSnapshots(NETWORK)).length;
  for (const [route, init] of [
    ['networks', {}],
    [`networks/${NETWORK}`, {}],
    [`networks/${NETWORK}/snapshots`, {}],
    ['overview', {}],
    ['agents', {}],
    ['stream', {}],
    [`networks/${NETWORK}/snapshots`, { method: 'POST', headers: json, body: JSON.stringify({ label: 'no-token' }) }],
    ['health/check', { method: 'POST', headers: json, body: '{}' }],
  ] as Array<[string, RequestInit]>) {
    const refused = await api(route, init);
    expect([route, refused.status]).toEqual([route, 401]);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await api(`${route}?token=not-the-token`, {
      ...init,
      headers: { ...(init.headers as Record<string, string>), authorization: 'Bearer wrong-token-wrong-token' },
    });
    expect([route, wrong.status]).toEqual([route, 401]);
  }
  expect((await mesh.client().listSnapshots(NETWORK)).length).toBe(before);
  // With the token, by header or in the URL; the page itself needs none.
  const byHeader = await api('networks', { headers: { authorization: `Bearer ${dashboard.token}` } });
  expect(byHeader.status).toBe(200);
  expect(((await byHeader.json()) as { networks: Array<{ id: string }> }).networks.map((n) => n.id)).toContain(NETWORK);
  expect((await api(`networks/${NETWORK}?token=${dashboard.token}`)).status).toBe(200);
  expect((await fetch(dashboard.baseUrl)).status).toBe(200);
  expect((await fetch(new URL('app.js', dashboard.baseUrl))).status).toBe(200);
});
