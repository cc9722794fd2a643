/**
 * google-api-python-client (Debian's `python3-googleapi`) as a real process against the Storage
 * emulator: multipart uploads with LF line endings, resumable uploads in chunks, listing,
 * download, the JSON batch endpoint and delete. The client is built from the Storage v1
 * discovery document the Cloud SDK ships (this Debian package ships none and cannot download
 * one here). Skipped, saying why, where either is missing.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Storage } from '@google-cloud/storage';
import { startStorageEmulator, type StorageEmulator } from '../../emulators/storage';
import { silentLogger, storageClientOptions } from '../../emulators/storage/testing';

process.env.METADATA_SERVER_DETECTION = 'none';
const run = promisify(execFile);

/** Debian's python3, where Debian's packages install the client (a pyenv python on the PATH has none). */
const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, 'python', 'storage_client.py');

function discoveryDocument(): string | undefined {
  try {
    const sdkRoot = execFileSync('gcloud', ['info', '--format=value(installation.sdk_root)'], {
      encoding: 'utf8',
      timeout: 30_000,
    }).trim();
    const document = path.join(sdkRoot, 'platform/gsutil/third_party/apitools/samples/storage_sample/storage_v1.json');
    return existsSync(document) ? document : undefined;
  } catch {
    return undefined;
  }
}

function hasPythonClient(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import googleapiclient'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const document = hasPythonClient() ? discoveryDocument() : undefined;
const describeWithPython = document ? describe : describe.skip;
const skipNote = document
  ? ''
  : " (skipped: needs /usr/bin/python3 with python3-googleapi and the Cloud SDK's storage_v1.json)";

describeWithPython(`google-api-python-client against the storage emulator${skipNote}`, () => {
  let emulator: StorageEmulator;
  let storage: Storage;
  const bucket = `python-${process.pid}`;

  beforeAll(async () => {
    emulator = await startStorageEmulator({ logger: silentLogger });
    storage = new Storage(storageClientOptions(emulator));
    await storage.createBucket(bucket);
  });

  afterAll(async () => {
    await emulator?.stop();
  });

  test('uploads (multipart with LF, resumable in chunks), lists, downloads, patches in a batch and deletes', async () => {
    const { stdout } = await run(PYTHON, [SCRIPT, emulator.url, bucket, document!], { timeout: 60_000 });
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(result.small).toEqual({ name: 'python/small.txt', size: '18', metadata: { by: 'python' } });
    expect(result.large).toMatchObject({ name: 'python/large.bin', size: String(600 * 1024) });
    expect(result.large.chunks).toBeGreaterThan(1);
    expect(result.listed).toEqual(['python/large.bin', 'python/small.txt']);
    expect(result.downloaded).toBe('hello from python\n');
    expect(result.patched).toEqual({ small: { by: 'python', batch: 'one' }, large: { batch: 'two' } });
    expect(result.afterDelete).toEqual(['python/small.txt']);
    // What the Python client stored is what the Node client reads.
    const [metadata] = await storage.bucket(bucket).file('python/small.txt').getMetadata();
    expect(metadata.metadata).toEqual({ by: 'python', batch: 'one' });
    expect((await storage.bucket(bucket).file('python/small.txt').download())[0].toString()).toBe(
      'hello from python\n',
    );
  }, 90_000);
});
