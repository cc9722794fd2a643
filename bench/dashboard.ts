/**
 * Dashboard figures: event latency from a write to the page (event stream and open network
 * view), and the dashboard server's memory at rest and under a burst of writes.
 *
 *   npm run bench:dashboard -- [--writes 50] [--burst 2000]
 *
 * Starts the local mesh here, the dashboard in a child process of its own (so its memory is
 * its own), and the page in headless Chromium (/usr/bin/chromium or SPINE_CHROMIUM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { startLocalMesh } from '../cli/local-mesh';
import { SpineStorage } from '../shared/mesh/spine-storage';
import { startDashboard } from '../dashboard/server';

const NETWORK = 'bench-dashboard';
const GROUP = 'latency';

interface ServerReport {
  url?: string;
  baselineRssMb?: number;
  rssMb?: number;
  heapMb?: number;
}

/** Child mode: serve the dashboard for the mesh in SPINE_BENCH_ENV and report memory every 250 ms. */
async function serve(): Promise<void> {
  const env = JSON.parse(process.env.SPINE_BENCH_ENV!) as Record<string, string>;
  // What the process costs before the dashboard starts (Node, the loader, the Google clients' modules).
  const baselineRssMb = process.memoryUsage().rss / 2 ** 20;
  const dashboard = await startDashboard({ env, healthIntervalMs: 0 });
  const report = (extra: ServerReport = {}) => {
    const { rss, heapUsed } = process.memoryUsage();
    process.stdout.write(JSON.stringify({ ...extra, rssMb: rss / 2 ** 20, heapMb: heapUsed / 2 ** 20 }) + '\n');
  };
  report({ url: dashboard.url, baselineRssMb });
  const timer = setInterval(report, 250);
  process.once('SIGTERM', () => {
    clearInterval(timer);
    void dashboard.stop().then(() => process.exit(0));
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      writes: { type: 'string', default: '50' },
      burst: { type: 'string', default: '2000' },
      serve: { type: 'boolean' },
    },
  });
  if (values.serve) return serve();
  const writes = Number(values.writes);
  const burst = Number(values.burst);
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  process.env.SPINE_LOG_LEVEL ??= 'ERROR';

  const mesh = await startLocalMesh({ onFunctionsLog: () => undefined, scheduler: false });
  let child: ChildProcess | undefined;
  const browser = await chromium.launch({
    executablePath: process.env.SPINE_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
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
  const spine = SpineStorage.fromEnv(mesh.env, { writerId: 'bench' });
  try {
    child = spawn(process.execPath, ['--import', 'tsx', __filename, '--serve'], {
      cwd: path.resolve(__dirname, '..'),
      env: {
        ...process.env,
        SPINE_BENCH_ENV: JSON.stringify(mesh.env),
        NODE_OPTIONS: process.env.BENCH_CHILD_NODE_OPTIONS ?? '',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let latest: ServerReport = {};
    let peakRssMb = 0;
    let peakHeapMb = 0;
    const ready = new Promise<string>((resolve, reject) => {
      child!.once('exit', (code, signal) =>
        reject(new Error(`the dashboard process ended early (${signal ?? `exit code ${code}`})`)),
      );
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        latest = JSON.parse(line) as ServerReport;
        peakRssMb = Math.max(peakRssMb, latest.rssMb ?? 0);
        peakHeapMb = Math.max(peakHeapMb, latest.heapMb ?? 0);
        if (latest.url) resolve(latest.url);
      });
    });
    const url = await ready;
    const baselineRssMb = latest.baselineRssMb!;
    const idle = () => new Promise((resolve) => setTimeout(resolve, 2_000));
    await idle();
    const startedRss = latest.rssMb!;

    // The harness evaluates strings in the page, which the dashboard's own policy forbids.
    const page = await browser.newPage({ bypassCSP: true });
    await page.goto(url);
    await page.locator('[data-testid="connection"][data-state="live"]').waitFor();
    await spine.saveContactContent(NETWORK, GROUP, 'warm-up', 0, { wait: 'materialized' });
    await page.locator(`[data-testid="network-item"][data-network-id="${NETWORK}"]`).click();
    await page.locator(`[data-testid="group"][data-group-id="${GROUP}"]`).waitFor();
    // The page notes when each contact first shows in the stream and in the open network's view.
    // A string, not a function: the TypeScript loader would wrap a function with helpers the page lacks.
    await page.evaluate(`
      window.__seen = {};
      const note = (key) => (window.__seen[key] ??= Date.now());
      new MutationObserver((records) => {
        for (const record of records)
          for (const node of record.addedNodes) {
            if (!(node instanceof HTMLElement)) continue;
            if (node.dataset.kind === 'contact-write' && node.dataset.contact) note('stream:' + node.dataset.contact);
            for (const row of node.querySelectorAll('[data-testid="contact"]')) note('view:' + row.dataset.contactId);
          }
      }).observe(document.body, { childList: true, subtree: true });
    `);
    await idle();
    const connectedRss = latest.rssMb!;

    const sentAt: Record<string, number> = {};
    for (let i = 0; i < writes; i += 1) {
      const contact = `c${i}`;
      sentAt[contact] = Date.now();
      await spine.saveContactContent(NETWORK, GROUP, contact, i);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await page.waitForFunction(
      `Object.keys(window.__seen).filter((k) => k.startsWith('view:c')).length >= ${writes}`,
      undefined,
      { timeout: 60_000 },
    );
    const seen = (await page.evaluate('window.__seen')) as Record<string, number>;
    const latencies = (prefix: string) =>
      Object.keys(sentAt)
        .map((contact) => seen[`${prefix}:${contact}`]! - sentAt[contact]!)
        .sort((a, b) => a - b);
    const stream = latencies('stream');
    const view = latencies('view');

    // A burst: as fast as the client publishes, one group per write so the view refreshes keep up.
    peakRssMb = 0;
    peakHeapMb = 0;
    const burstStarted = Date.now();
    await Promise.all(
      Array.from({ length: burst }, (_, i) => spine.saveContactContent(NETWORK, `burst/${i % 20}`, `b${i}`, i)),
    );
    await spine.flush(120_000);
    const burstMs = Date.now() - burstStarted;
    await page.waitForTimeout(1_500);
    const pageHeapMb =
      ((await page.evaluate('performance.memory ? performance.memory.usedJSHeapSize : 0')) as number) / 2 ** 20;
    const shownEvents = await page.locator('[data-testid="event"]').count();

    const ms = (values: number[]) =>
      `p50 ${percentile(values, 50)} ms, p95 ${percentile(values, 95)} ms, max ${values[values.length - 1]} ms`;
    console.log(`dashboard figures (${writes} writes 100 ms apart, then a burst of ${burst}):`);
    console.log(`  write accepted → event on the page        ${ms(stream)}`);
    console.log(`  write accepted → value in the network view ${ms(view)}`);
    console.log(
      `  dashboard process RSS: ${baselineRssMb.toFixed(0)} MB with its modules loaded, ${startedRss.toFixed(0)} MB serving at rest, ${connectedRss.toFixed(0)} MB with a page open`,
    );
    console.log(`  during the burst: peak RSS ${peakRssMb.toFixed(0)} MB, peak JS heap ${peakHeapMb.toFixed(0)} MB`);
    console.log(
      `  burst of ${burst} writes materialized in ${burstMs} ms; page JS heap ${pageHeapMb.toFixed(1)} MB, ${shownEvents} events in the list (bounded)`,
    );
  } finally {
    await spine.close();
    await browser.close();
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await mesh.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
