/**
 * The dashboard's history and point-in-time restore, end to end: the local mesh with its archiver,
 * the dashboard server, and the page in headless Chromium. A contact's history and the network's
 * timeline come from the archive; "Restore to here" asks first, and does nothing when refused.
 */
import { randomUUID } from 'node:crypto';
import { chromium, type Browser, type Dialog, type Page } from 'playwright-core';
import { eventually } from 'super-spine/testing';
import { startDashboard, type Dashboard } from '../../dashboard/server';
import type { SpineStorage } from '../../shared/mesh/spine-storage';
import { createMemoryLogger } from '../helpers/emulators';
import { useLocalMesh } from '../helpers/mesh';
import { expectText, UI_TIMEOUT_MS } from '../helpers/page';

jest.setTimeout(120_000);

const run = randomUUID().slice(0, 8);
const NETWORK = `hist-${run}`;
const GROUP = 'users/@bob';

let dashboard: Dashboard;
let browser: Browser;
let page: Page;
let writer: SpineStorage;
/** What the page asked in its confirmation dialogs, and whether the next one is accepted. */
const asked: string[] = [];
let acceptDialogs = true;

afterAll(async () => {
  await browser?.close();
  await dashboard?.stop();
});
const mesh = useLocalMesh({ archiver: { maxBatchMs: 200 } });

const byTestId = (id: string) => page.locator(`[data-testid="${id}"]`);
const historyRow = (value: string) =>
  page.locator('[data-testid="history-row"]', {
    has: page.locator(`[data-testid="history-value"]:text-is('${value}')`),
  });
const contactValue = () =>
  page.locator(
    `[data-testid="group"][data-group-id="${GROUP}"] [data-testid="contact"][data-contact-id="mood"] [data-testid="contact-value"]`,
  );

beforeAll(async () => {
  writer = mesh.client({ writerId: `hist-writer-${run}` });
  await writer.initialize();
  for (const mood of ['calm', 'busy', 'angry']) {
    await writer.saveContactContent(NETWORK, GROUP, 'mood', mood, { wait: 'materialized' });
    // Distinct instants, so each entry's "restore to here" names a moment of its own.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // The archiver writes about every 200 ms here: wait until all three are archived.
  await eventually(async () => expect((await writer.history(NETWORK, GROUP, 'mood')).entries).toHaveLength(3), {
    timeoutMs: 30_000,
    intervalMs: 200,
  });

  dashboard = await startDashboard({ env: mesh.mesh.env, port: 0, healthIntervalMs: 0, logger: createMemoryLogger() });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('dialog', (dialog: Dialog) => {
    asked.push(dialog.message());
    void (acceptDialogs ? dialog.accept() : dialog.dismiss());
  });
  await page.goto(dashboard.url);
  await page.locator(`[data-testid="network-item"][data-network-id="${NETWORK}"]`).click({ timeout: UI_TIMEOUT_MS });
  await expectText(contactValue(), '"angry"');
}, 90_000);

test("a contact's history lists its writes newest first, with value and outcome", async () => {
  await page
    .locator(`[data-testid="group"][data-group-id="${GROUP}"] [data-testid="contact"][data-contact-id="mood"]`)
    .locator('[data-testid="contact-history"]')
    .click();
  await expectText(byTestId('history-scope'), `of ${GROUP} / mood`);
  await eventually(
    async () =>
      expect(await page.locator('[data-testid="history-row"] [data-testid="history-value"]').allTextContents()).toEqual(
        ['"angry"', '"busy"', '"calm"'],
      ),
    { timeoutMs: UI_TIMEOUT_MS, intervalMs: 100 },
  );
  expect(
    await page
      .locator('[data-testid="history-row"]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-outcome'))),
  ).toEqual(['changed', 'changed', 'changed']);
});

test('"Restore to here" into a new network asks first, and leaves the live network alone', async () => {
  const target = `${NETWORK}-at-calm`;
  await byTestId('restore-as').fill(target);
  const before = asked.length;
  await historyRow('"calm"').locator('[data-testid="history-restore"]').click();
  await expectText(byTestId('history-notice'), new RegExp(`^Network ${target} restored to `));
  expect(asked.slice(before)).toHaveLength(1);
  expect(asked[before]).toContain(`into the new network ${target}`);

  expect(await writer.loadContactContent(target, GROUP, 'mood')).toBe('calm');
  expect(await writer.loadContactContent(NETWORK, GROUP, 'mood')).toBe('angry');
  // The new network joined the page's list.
  await page.locator(`[data-testid="network-item"][data-network-id="${target}"]`).waitFor({ timeout: UI_TIMEOUT_MS });
});

test('a refused confirmation restores nothing; an accepted one replaces the live network', async () => {
  await byTestId('restore-as').fill('');
  acceptDialogs = false;
  const before = asked.length;
  await historyRow('"busy"').locator('[data-testid="history-restore"]').click();
  await eventually(() => expect(asked.length).toBe(before + 1), { timeoutMs: UI_TIMEOUT_MS, intervalMs: 50 });
  expect(asked[before]).toContain('Its current state is replaced');
  // Nothing was sent: no restore is under way and the live value stays.
  expect(await byTestId('history-notice').textContent()).not.toMatch(/^Restoring/);
  expect(await writer.loadContactContent(NETWORK, GROUP, 'mood')).toBe('angry');

  acceptDialogs = true;
  await historyRow('"busy"').locator('[data-testid="history-restore"]').click();
  await expectText(byTestId('history-notice'), new RegExp(`^Network ${NETWORK} restored to `));
  expect(await writer.loadContactContent(NETWORK, GROUP, 'mood')).toBe('busy');
  await expectText(contactValue(), '"busy"');
});

test("the network's timeline shows the restore as a network save; a bad target is refused with its reason", async () => {
  await byTestId('history-whole-network').click();
  await expectText(byTestId('history-scope'), 'of the whole network');
  await eventually(
    async () => {
      await byTestId('history-refresh').click();
      expect(await page.locator('[data-testid="history-row"][data-kind="network-saved"]').count()).toBeGreaterThan(0);
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
  expect(await page.locator('[data-testid="history-row"][data-kind="contact-write"]').count()).toBe(3);

  // Into a network that exists: refused, and the page says why.
  await byTestId('restore-as').fill(`${NETWORK}-at-calm`);
  await historyRow('"angry"').locator('[data-testid="history-restore"]').click();
  await expectText(byTestId('history-notice'), /^Restore failed: .*exists/);
  expect(await writer.loadContactContent(`${NETWORK}-at-calm`, GROUP, 'mood')).toBe('calm');
});
