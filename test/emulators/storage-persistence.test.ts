/**
 * The storage emulator with a data directory: what it acknowledged survives a restart, files are
 * named so object names cannot escape the directory, and `main.ts` runs it as a process.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Storage } from '@google-cloud/storage';
import { startStorageEmulator, StorageEmulatorSettingError, type StorageEmulator } from '../../emulators/storage';
import { silentLogger, storageClientOptions } from '../../emulators/storage/testing';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const repoRoot = path.resolve(__dirname, '../..');

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

describe('restart with a data directory', () => {
  let dataDir: string;
  let emulator: StorageEmulator | undefined;
  const start = async () => {
    emulator = await startStorageEmulator({ dataDir, logger: silentLogger });
    return { emulator, storage: new Storage(storageClientOptions(emulator)) };
  };

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'storage-emulator-'));
  });
  afterAll(async () => {
    await emulator?.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  const large = randomBytes(3 * 1024 * 1024 + 5);
  const tricky = ['../../escape/attempt', '/leading-slash', 'a/b/c', 'ünïcødé 名前', 'x'.repeat(900)];
  let generationBefore = '';
  let sessionId = '';
  const partialUpload = randomBytes(256 * 1024);

  test('first run: buckets, objects, metadata, versions and an unfinished upload', async () => {
    const { emulator: first, storage } = await start();
    const [bucket] = await storage.createBucket('persisted', { labels: { kept: 'yes' } });
    const simple = bucket.file('simple.txt');
    await simple.save('simple', { resumable: false, metadata: { contentType: 'text/plain' } });
    await bucket.file('large.bin').save(large, { resumable: true, chunkSize: 1024 * 1024 });
    for (const name of tricky) await bucket.file(name).save(name);
    await bucket.file('patched').save('p');
    await bucket.file('patched').setMetadata({ metadata: { note: 'patched once' } });
    await bucket.file('deleted').save('gone soon');
    await bucket.file('deleted').delete();
    generationBefore = String(simple.metadata.generation);

    const [versioned] = await storage.createBucket('persisted-versions', { versioning: { enabled: true } });
    await versioned.file('doc').save('v1');
    await versioned.file('doc').save('v2');

    const [uri] = await bucket.file('resumed-after-restart.bin').createResumableUpload();
    sessionId = new URL(uri).searchParams.get('upload_id')!;
    const put = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes 0-${partialUpload.length - 1}/*` },
      body: partialUpload,
    });
    expect(put.status).toBe(308);

    await first.stop();
  });

  test('the directory holds nothing outside its own layout, whatever the object names', async () => {
    const files = await filesUnder(dataDir);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      expect(file).toMatch(
        /^(buckets\/[a-z0-9._-]+\.json|objects\/[a-z0-9._-]+\/[0-9a-f]{64}\.json|blobs\/[0-9a-f-]{36}|uploads\/[0-9a-f-]{36}\.(json|part))$/,
      );
    }
    await expect(fs.access(path.join(dataDir, '..', 'escape'))).rejects.toThrow();
  });

  test('second run: everything acknowledged is back, byte for byte', async () => {
    const { storage } = await start();
    const bucket = storage.bucket('persisted');
    expect((await bucket.getMetadata())[0].labels).toEqual({ kept: 'yes' });

    const [simpleMetadata] = await bucket.file('simple.txt').getMetadata();
    expect(simpleMetadata).toMatchObject({ generation: generationBefore, contentType: 'text/plain', size: '6' });
    expect(sha256((await bucket.file('large.bin').download())[0])).toBe(sha256(large));
    for (const name of tricky) expect((await bucket.file(name).download())[0].toString()).toBe(name);
    expect((await bucket.file('patched').getMetadata())[0]).toMatchObject({
      metageneration: '2',
      metadata: { note: 'patched once' },
    });
    expect(await bucket.file('deleted').exists()).toEqual([false]);

    const [versions] = await storage.bucket('persisted-versions').getFiles({ versions: true });
    expect(versions).toHaveLength(2);

    // New generations keep growing past the ones written before the restart.
    const simple = bucket.file('simple.txt');
    await simple.save('rewritten');
    expect(BigInt(String(simple.metadata.generation))).toBeGreaterThan(BigInt(generationBefore));
  });

  test('an upload session survives the restart and finishes from the stored offset', async () => {
    const uri = `${emulator!.url}/upload/storage/v1/b/persisted/o?uploadType=resumable&upload_id=${sessionId}`;
    const status = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
    expect(status.status).toBe(308);
    expect(status.headers.get('range')).toBe(`bytes=0-${partialUpload.length - 1}`);

    const rest = randomBytes(1000);
    const total = partialUpload.length + rest.length;
    const done = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes ${partialUpload.length}-${total - 1}/${total}` },
      body: rest,
    });
    expect(done.status).toBe(200);
    const storage = new Storage(storageClientOptions(emulator!));
    const [content] = await storage.bucket('persisted').file('resumed-after-restart.bin').download();
    expect(sha256(content)).toBe(sha256(Buffer.concat([partialUpload, rest])));
  });

  test('overwritten and deleted objects leave no blobs behind', async () => {
    const storage = new Storage(storageClientOptions(emulator!));
    const bucket = storage.bucket('persisted');
    const blobsBefore = (await fs.readdir(path.join(dataDir, 'blobs'))).length;
    for (let i = 0; i < 5; i++) await bucket.file('churn').save(`version ${i}`);
    await bucket.file('churn').delete();
    expect((await fs.readdir(path.join(dataDir, 'blobs'))).length).toBe(blobsBefore);
  });

  test('a second emulator cannot open a data directory in use', async () => {
    await expect(startStorageEmulator({ dataDir, logger: silentLogger })).rejects.toBeInstanceOf(
      StorageEmulatorSettingError,
    );
  });
});

describe('main.ts', () => {
  test('prints STORAGE_EMULATOR_HOST, serves the client, keeps data across runs and stops on SIGTERM', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'storage-emulator-main-'));
    const run = async (work: (storage: Storage) => Promise<void>) => {
      const child = spawn(
        path.join(repoRoot, 'node_modules/.bin/tsx'),
        ['emulators/storage/main.ts', '--port', '0', '--data-dir', dataDir],
        {
          cwd: repoRoot,
          env: { ...process.env, SPINE_LOG_LEVEL: 'INFO' },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        // stdout also carries the structured logs; the address is the line a shell can `export`.
        const line = await new Promise<string>((resolve, reject) => {
          createInterface({ input: child.stdout }).on('line', (text) => {
            if (text.startsWith('STORAGE_EMULATOR_HOST=')) resolve(text);
          });
          child.once('exit', (code) => reject(new Error(`main.ts exited with ${code} before printing its address`)));
        });
        expect(line).toMatch(/^STORAGE_EMULATOR_HOST=http:\/\/127\.0\.0\.1:\d+$/);
        const url = line.slice('STORAGE_EMULATOR_HOST='.length);
        await work(new Storage({ apiEndpoint: url, projectId: 'test-project' }));
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    };
    try {
      await run(async (storage) => {
        const [bucket] = await storage.createBucket('from-main');
        await bucket.file('kept').save('across processes');
      });
      await run(async (storage) => {
        expect((await storage.bucket('from-main').file('kept').download())[0].toString()).toBe('across processes');
      });
      expect(await fs.readdir(dataDir)).not.toContain('emulator.lock');
    } finally {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
