/**
 * Small-object throughput of the storage emulator, measured with the official client, next to
 * a raw node:http baseline in the same run so the ratio is meaningful on any machine. The
 * emulator (emulators/storage/main.ts) and the baseline server each run in their own process,
 * as they would in use; this process only drives them.
 *
 *   npx tsx bench/storage-emulator.ts [--ops 2000] [--concurrency 16] [--size 1024]
 *
 * Rows:
 *  - baseline: a bare node:http server that reads the body and answers, driven by node:http
 *  - emulator, raw HTTP: the same requests as JSON API calls (uploadType=media, alt=media)
 *  - emulator, official client: file.save({resumable:false}) / file.download() (crc32c checked)
 *  - emulator, official client, resumable: file.save() with its default resumable upload
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Storage } from '@google-cloud/storage';
import type { StorageEmulatorStats } from '../emulators/storage';
import { storageClientOptions } from '../emulators/storage/testing';

process.env.METADATA_SERVER_DETECTION ??= 'none';

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '16' },
    size: { type: 'string', default: '1024' },
  },
});
const OPS = positive('ops', values.ops);
const CONCURRENCY = positive('concurrency', values.concurrency);
const SIZE = positive('size', values.size);
const WARMUP = Math.min(200, OPS);

function positive(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${text}`);
  return value;
}

/** Runs `op(i)` for i in [0, total) with at most `concurrency` in flight; returns ops per second. */
async function throughput(total: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (next < total) await op(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return total / seconds;
}

/** A minimal keep-alive HTTP client: method, URL, optional body → status and body. */
function rawRequest(
  agent: http.Agent,
  method: string,
  url: string,
  body?: Buffer,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method, agent, headers: body ? { 'Content-Length': body.length } : {} },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function expectOk(promise: Promise<{ status: number }>): Promise<void> {
  const { status } = await promise;
  if (status !== 200) throw new Error(`unexpected status ${status}`);
}

/** The floor: a server that does nothing but read the body and answer, in its own process. */
const BASELINE_SERVER = `
  const http = require('node:http');
  const payload = Buffer.alloc(Number(process.argv[1]), 7);
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'GET') res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(payload);
      else res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    });
  });
  server.listen(0, '127.0.0.1', () => console.log('BASELINE_URL=http://127.0.0.1:' + server.address().port));
  process.on('SIGTERM', () => process.exit(0));
`;

/** Starts a server process and resolves with the URL it prints as `NAME=url`. */
async function startServerProcess(
  command: string,
  args: string[],
  announcement: string,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(command, args, {
    cwd: path.resolve(__dirname, '..'),
    env: { ...process.env, SPINE_LOG_LEVEL: 'WARNING' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith(`${announcement}=`)) resolve(line.slice(announcement.length + 1));
    });
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code} before announcing ${announcement}`)));
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface Row {
  setup: string;
  writes: number;
  reads: number;
}

async function main(): Promise<void> {
  const payload = randomBytes(SIZE);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const rows: Row[] = [];
  const measure = async (
    setup: string,
    write: (i: number) => Promise<unknown>,
    read: (i: number) => Promise<unknown>,
  ) => {
    await throughput(WARMUP, CONCURRENCY, write);
    const writes = await throughput(OPS, CONCURRENCY, write);
    const reads = await throughput(OPS, CONCURRENCY, read);
    rows.push({ setup, writes, reads });
    process.stderr.write(`  ${setup}: done\n`);
  };

  process.stderr.write(`storage emulator benchmark: ${OPS} ops, concurrency ${CONCURRENCY}, ${SIZE}-byte objects\n`);

  const baseline = await startServerProcess(process.execPath, ['-e', BASELINE_SERVER, String(SIZE)], 'BASELINE_URL');
  try {
    await measure(
      'baseline node:http (raw client)',
      (i) => expectOk(rawRequest(agent, 'POST', `${baseline.url}/write/${i}`, payload)),
      (i) => expectOk(rawRequest(agent, 'GET', `${baseline.url}/read/${i % OPS}`)),
    );
  } finally {
    await baseline.stop();
  }

  const tsx = path.resolve(__dirname, '../node_modules/.bin/tsx');
  const emulator = await startServerProcess(tsx, ['emulators/storage/main.ts', '--port', '0'], 'STORAGE_EMULATOR_HOST');
  try {
    const storage = new Storage(storageClientOptions(emulator));
    const [bucket] = await storage.createBucket('bench');
    const name = (i: number) => `objects/${i % OPS}`;
    const mediaUpload = (i: number) =>
      `${emulator.url}/upload/storage/v1/b/bench/o?uploadType=media&name=${encodeURIComponent(name(i))}`;

    await measure(
      'emulator, raw HTTP (media upload / alt=media)',
      (i) => expectOk(rawRequest(agent, 'POST', mediaUpload(i), payload)),
      (i) =>
        expectOk(
          rawRequest(agent, 'GET', `${emulator.url}/storage/v1/b/bench/o/${encodeURIComponent(name(i))}?alt=media`),
        ),
    );
    await measure(
      'emulator, official client (save resumable:false / download)',
      (i) => bucket.file(name(i)).save(payload, { resumable: false }),
      (i) => bucket.file(name(i)).download(),
    );
    await measure(
      'emulator, official client (save default resumable / download)',
      (i) => bucket.file(name(i)).save(payload),
      (i) => bucket.file(name(i)).download(),
    );

    const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as StorageEmulatorStats;
    printTable(rows);
    process.stdout.write(
      `\nemulator counted ${stats.objectWrites} object writes, ${stats.downloads} downloads, ${stats.requests} requests\n`,
    );
  } finally {
    await emulator.stop();
    agent.destroy();
  }
}

function printTable(rows: Row[]): void {
  const base = rows[0];
  const format = (value: number) => value.toFixed(0).padStart(8);
  const ratio = (value: number, reference: number | undefined) =>
    (reference ? `${((value / reference) * 100).toFixed(0)}%` : '').padStart(6);
  process.stdout.write(
    `\n${'setup'.padEnd(64)} ${'writes/s'.padStart(8)} ${'vs base'.padStart(7)} ${'reads/s'.padStart(8)} ${'vs base'.padStart(7)}\n`,
  );
  for (const row of rows) {
    process.stdout.write(
      `${row.setup.padEnd(64)} ${format(row.writes)} ${ratio(row.writes, base?.writes)}  ${format(row.reads)} ${ratio(row.reads, base?.reads)}\n`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`benchmark failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
