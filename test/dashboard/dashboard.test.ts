/**
 * The dashboard end to end: the whole local mesh, the dashboard server on a free port, and the
 * page in headless Chromium. Writes are made by the `spine` CLI as a real process and by a
 * SpineStorage client; the page must show them live, and its buttons must change the mesh.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { eventually } from 'super-spine/testing';
import { startDashboard, type Dashboard } from '../../dashboard/server';
import { createMemoryLogger } from '../helpers/emulators';
import { useLocalMesh } from '../helpers/mesh';
import { expectText, UI_TIMEOUT_MS } from '../helpers/page';

jest.setTimeout(120_000);

const ROOT = path.resolve(__dirname, '../..');
const NETWORK = 'dash-net';
const GROUP = 'users/@alice';
const XSS_VALUE = '<img src=x onerror="window.__xssRan = true">';

const mesh = useLocalMesh();
const run = promisify(execFile);

let dashboard: Dashboard;
let browser: Browser;
let page: Page;
let cliDataDir: string;

/** `spine put …` as its own process, finding the mesh through the environment as a user's shell would. */
async function spinePut(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [path.join(ROOT, 'bin/spine.js'), 'put', ...args], {
    cwd: ROOT,
    // A data dir of its own, so no mesh.env of another run is read.
    env: {
      ...process.env,
      ...mesh.mesh.env,
      SPINE_DATA_DIR: cliDataDir,
      SPINE_LOG_LEVEL: 'ERROR',
      METADATA_SERVER_DETECTION: 'none',
    },
    timeout: 60_000,
  });
  return stdout;
}

const byTestId = (id: string) => page.locator(`[data-testid="${id}"]`);
const contactValue = (group: string, contact: string) =>
  page.locator(
    `[data-testid="group"][data-group-id="${group}"] [data-testid="contact"][data-contact-id="${contact}"] [data-testid="contact-value"]`,
  );

async function dashboardSubscriptions(): Promise<string[]> {
  const [subscriptions] = await mesh.pubsub.getSubscriptions();
  return subscriptions
    .filter(
      (s) =>
        s.name.includes('/subscriptions/spine-dashboard-') || String(s.metadata?.filter ?? '').includes('"dashboard.'),
    )
    .map((s) => s.name);
}

beforeAll(async () => {
  cliDataDir = await mkdtemp(path.join(os.tmpdir(), 'spine-dashboard-cli-'));
  dashboard = await startDashboard({ env: mesh.mesh.env, port: 0, healthIntervalMs: 0, logger: createMemoryLogger() });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    // Playwright gives every launch a fresh profile; the flags keep Chromium off the (closed) network.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('dialog', (dialog) => void dialog.accept());
  // The URL npm start prints: the page with its token, which the page keeps and takes out of the address bar.
  expect(dashboard.url).toBe(`${dashboard.baseUrl}?token=${dashboard.token}`);
  await page.goto(dashboard.url);
  await page.locator('[data-testid="connection"][data-state="live"]').waitFor({ timeout: UI_TIMEOUT_MS });
  expect(page.url()).toBe(dashboard.baseUrl);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await dashboard?.stop();
  if (cliDataDir) await rm(cliDataDir, { recursive: true, force: true });
});

test('a write made with `spine put` shows in the event stream, with rates, and in the network view', async () => {
  expect(await spinePut(NETWORK, GROUP, 'mood', '"happy"', '--wait')).toContain('materialized');

  const written = page.locator(
    `[data-testid="event"][data-kind="contact-write"][data-path="${NETWORK}/${GROUP}"][data-contact="mood"]`,
  );
  await expectText(written.locator('[data-testid="event-value"]'), '"happy"');
  await page
    .locator(`[data-testid="event"][data-kind="group-change"][data-path="${NETWORK}/${GROUP}"]`)
    .first()
    .waitFor({ timeout: UI_TIMEOUT_MS });
  await eventually(async () => expect(Number(await byTestId('rate-contact-write').textContent())).toBeGreaterThan(0), {
    timeoutMs: UI_TIMEOUT_MS,
    intervalMs: 100,
  });

  // The new network joined the list when its change arrived.
  await page.locator(`[data-testid="network-item"][data-network-id="${NETWORK}"]`).click({ timeout: UI_TIMEOUT_MS });
  await expectText(contactValue(GROUP, 'mood'), '"happy"');
});

test('a value with markup is shown as text, never run, and the open network follows new writes', async () => {
  await spinePut(NETWORK, GROUP, 'mood', JSON.stringify(XSS_VALUE), '--wait');

  await expectText(contactValue(GROUP, 'mood'), JSON.stringify(XSS_VALUE));
  const written = page.locator(
    `[data-testid="event"][data-kind="contact-write"][data-path="${NETWORK}/${GROUP}"][data-contact="mood"]`,
  );
  await expectText(written.first().locator('[data-testid="event-value"]'), JSON.stringify(XSS_VALUE));
  expect(await page.locator('img').count()).toBe(0);
  expect(await page.evaluate(() => (globalThis as { __xssRan?: boolean }).__xssRan)).toBeUndefined();
});

test('a snapshot created on the page, then restored from it, puts the state back in the mesh', async () => {
  const client = mesh.client();
  await client.saveContactContent(NETWORK, GROUP, 'mood', 'before', { wait: 'materialized' });
  await expectText(contactValue(GROUP, 'mood'), '"before"');

  await byTestId('snapshot-label').fill('checkpoint');
  await byTestId('snapshot-create').click();
  await expectText(byTestId('snapshot-notice'), /^Snapshot .+ created\.$/);
  const row = page.locator('[data-testid="snapshot-row"]', { hasText: 'checkpoint' });
  await row.waitFor({ timeout: UI_TIMEOUT_MS });
  const snapshotId = await row.getAttribute('data-snapshot-id');
  expect((await client.listSnapshots(NETWORK)).map((s) => s.id)).toContain(snapshotId);

  await client.saveContactContent(NETWORK, GROUP, 'mood', 'after', { wait: 'materialized' });
  await client.saveContactContent(NETWORK, 'users/@bob', 'score', 7, { wait: 'materialized' });
  await expectText(contactValue(GROUP, 'mood'), '"after"');

  await row.locator('[data-testid="snapshot-restore"]').click();
  await expectText(byTestId('snapshot-notice'), `Network ${NETWORK} restored to snapshot ${snapshotId}.`);
  await expectText(contactValue(GROUP, 'mood'), '"before"');
  await page
    .locator('[data-testid="group"][data-group-id="users/@bob"]')
    .waitFor({ state: 'detached', timeout: UI_TIMEOUT_MS });
  // The mesh itself, not only the page.
  expect(await client.loadContactContent(NETWORK, GROUP, 'mood')).toBe('before');
  expect(await client.loadGroupState(NETWORK, 'users/@bob')).toBeNull();
});

test('health shows the mesh healthy with a canary latency; a heartbeat shows its agent online', async () => {
  await byTestId('health-check').click();
  await page.locator('[data-testid="health-status"][data-status="healthy"]').waitFor({ timeout: UI_TIMEOUT_MS });
  await expectText(byTestId('canary-latency'), /^\d+ ms$/);

  await mesh.client().heartbeat('agent-dashboard', 'crunching', { wait: 'materialized' });
  const agent = page.locator('[data-testid="agent-row"][data-agent-id="agent-dashboard"]');
  await agent.and(page.locator('[data-online="true"]')).waitFor({ timeout: UI_TIMEOUT_MS });
  await expectText(agent.locator('[data-testid="agent-state"]'), 'online');
});

test('an event materialize cannot apply shows as a dead letter', async () => {
  await mesh.pubsub.topic(mesh.mesh.topology.topics.contactWrites.name).publishMessage({
    data: Buffer.from('not an event'),
    attributes: { type: 'dev.superspine.contact.written.v1', networkId: NETWORK, path: `${NETWORK}/broken` },
  });
  const letter = page.locator(`[data-testid="event"][data-kind="dead-letter"][data-path="${NETWORK}/broken"]`);
  await letter.waitFor({ timeout: UI_TIMEOUT_MS });
  await expect(letter.textContent()).resolves.toContain('not an encoded event');
});

test('stop() deletes the dashboard subscriptions from the emulator and ends the page stream', async () => {
  // Its taps on the topics, and the acknowledgement subscription of its client (it wrote a snapshot request).
  expect((await dashboardSubscriptions()).length).toBeGreaterThanOrEqual(5);
  await dashboard.stop();
  expect(await dashboardSubscriptions()).toEqual([]);
  await page.locator('[data-testid="connection"][data-state="reconnecting"]').waitFor({ timeout: UI_TIMEOUT_MS });
  await expect(fetch(dashboard.url)).rejects.toThrow();
});
