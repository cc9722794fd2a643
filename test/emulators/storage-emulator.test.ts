/**
 * The storage emulator driven by the official @google-cloud/storage client (v8), configured
 * with nothing but `apiEndpoint` (and, in one test, STORAGE_EMULATOR_HOST).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { CRC32C, Storage, type ApiError, type Bucket, type File, type FileMetadata } from '@google-cloud/storage';
import { startStorageEmulator, type StorageEmulator } from '../../emulators/storage';
import { silentLogger, storageClientOptions } from '../../emulators/storage/testing';

process.env.METADATA_SERVER_DETECTION = 'none';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const md5Base64 = (data: Buffer) => createHash('md5').update(data).digest('base64');
const crc32cBase64 = (data: Buffer) => {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
};

/** The rejection of a promise that must fail, with the fields the client sets on API errors. */
async function failure(promise: Promise<unknown>): Promise<ApiError & { errors?: Array<{ reason?: string }> }> {
  try {
    await promise;
  } catch (error) {
    return error as ApiError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

let emulator: StorageEmulator;
let storage: Storage;
let runId = 0;
/** A fresh bucket per test, so tests do not see each other's objects. */
async function newBucket(settings: Record<string, unknown> = {}): Promise<Bucket> {
  const [bucket] = await storage.createBucket(`test-bucket-${process.pid}-${++runId}`, settings);
  return bucket;
}

beforeAll(async () => {
  emulator = await startStorageEmulator({ logger: silentLogger });
  storage = new Storage(storageClientOptions(emulator));
});

afterAll(async () => {
  await emulator?.stop();
});

describe('buckets', () => {
  test('create, get, list, patch and delete', async () => {
    const bucket = await newBucket({ labels: { team: 'spine' } });
    const [metadata] = await bucket.getMetadata();
    expect(metadata).toMatchObject({
      kind: 'storage#bucket',
      name: bucket.name,
      metageneration: '1',
      labels: { team: 'spine' },
    });

    const [buckets] = await storage.getBuckets();
    expect(buckets.map((b) => b.name)).toContain(bucket.name);
    expect(await bucket.exists()).toEqual([true]);

    const [patched] = await bucket.setMetadata({ labels: { team: null, env: 'local' } });
    expect(patched.metageneration).toBe('2');
    expect(patched.labels).toEqual({ env: 'local' });

    await bucket.delete();
    expect(await bucket.exists()).toEqual([false]);
  });

  test('creating an existing bucket is 409 conflict', async () => {
    const bucket = await newBucket();
    const error = await failure(storage.createBucket(bucket.name));
    expect(error.code).toBe(409);
    expect(error.errors?.[0]?.reason).toBe('conflict');
  });

  test('deleting a bucket that still holds objects is 409, and works once empty', async () => {
    const bucket = await newBucket();
    await bucket.file('keep').save('x');
    const error = await failure(bucket.delete());
    expect(error.code).toBe(409);
    expect(error.message).toBe('The bucket you tried to delete is not empty.');
    await bucket.file('keep').delete();
    await bucket.delete();
  });

  test('a missing bucket is 404 notFound with the service message', async () => {
    const error = await failure(storage.bucket('no-such-bucket-here').getMetadata());
    expect(error.code).toBe(404);
    expect(error.message).toBe('The specified bucket does not exist.');
    expect(error.errors?.[0]).toMatchObject({ reason: 'notFound', domain: 'global' });
  });

  test('an invalid bucket name is 400 invalid', async () => {
    const error = await failure(storage.createBucket('Invalid_Name!'));
    expect(error.code).toBe(400);
    expect(error.errors?.[0]?.reason).toBe('invalid');
  });
});

describe('object writes and reads', () => {
  let bucket: Bucket;
  beforeAll(async () => {
    bucket = await newBucket();
  });

  test.each([
    ['multipart (resumable: false)', { resumable: false }],
    ['resumable', { resumable: true }],
  ])('save and download round-trip: %s', async (_kind, options) => {
    const data = randomBytes(100_000);
    const file = bucket.file(`round-trip/${_kind}`);
    await file.save(data, {
      ...options,
      contentType: 'application/x-test',
      metadata: { metadata: { origin: 'test' } },
    });

    const [downloaded] = await file.download();
    expect(sha256(downloaded)).toBe(sha256(data));
    const [metadata] = await file.getMetadata();
    expect(metadata).toMatchObject({
      name: file.name,
      bucket: bucket.name,
      size: String(data.length),
      contentType: 'application/x-test',
      md5Hash: md5Base64(data),
      crc32c: crc32cBase64(data),
      metageneration: '1',
      metadata: { origin: 'test' },
    });
    expect(metadata.generation).toMatch(/^\d+$/);
  });

  test('a media upload (uploadType=media) stores the body and its content type', async () => {
    const response = await fetch(
      `${emulator.url}/upload/storage/v1/b/${bucket.name}/o?uploadType=media&name=media%2Fplain.txt`,
      {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain' },
        body: 'plain media',
      },
    );
    expect(response.status).toBe(200);
    const resource = (await response.json()) as Record<string, string>;
    expect(resource).toMatchObject({ name: 'media/plain.txt', contentType: 'text/plain', size: '11' });
    const [content] = await bucket.file('media/plain.txt').download();
    expect(content.toString()).toBe('plain media');
  });

  test('every write gets a larger generation; metageneration restarts at 1', async () => {
    const file = bucket.file('generations');
    await file.save('one');
    const first = BigInt(file.metadata.generation!);
    await file.setMetadata({ contentType: 'text/plain' });
    await file.save('two');
    const second = BigInt(file.metadata.generation!);
    expect(second).toBeGreaterThan(first);
    expect(file.metadata.metageneration).toBe('1');
  });

  test('downloads pass the client validation (crc32c and md5) and carry the x-goog headers', async () => {
    const data = randomBytes(4096);
    const file = bucket.file('validated');
    await file.save(data);
    expect(sha256((await file.download({ validation: 'crc32c' }))[0])).toBe(sha256(data));
    expect(sha256((await file.download({ validation: 'md5' }))[0])).toBe(sha256(data));

    const response = await fetch(`${emulator.url}/storage/v1/b/${bucket.name}/o/validated?alt=media`);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-goog-hash')).toBe(`crc32c=${crc32cBase64(data)},md5=${md5Base64(data)}`);
    expect(response.headers.get('x-goog-generation')).toBe(file.metadata.generation);
    expect(response.headers.get('x-goog-metageneration')).toBe('1');
    expect(response.headers.get('x-goog-stored-content-length')).toBe('4096');
    expect(response.headers.get('x-goog-stored-content-encoding')).toBe('identity');
    expect(Buffer.from(await response.arrayBuffer()).equals(data)).toBe(true);
  });

  test('gzip content (save with gzip: true) is served as stored to gzip clients and unzipped for others', async () => {
    const text = 'compressible '.repeat(1000);
    const file = bucket.file('zipped.txt');
    await file.save(text, { gzip: true, contentType: 'text/plain' });
    const [metadata] = await file.getMetadata();
    expect(metadata.contentEncoding).toBe('gzip');
    expect(Number(metadata.size)).toBeLessThan(text.length);
    expect((await file.download())[0].toString()).toBe(text);

    const plain = await new Promise<string>((resolve, reject) => {
      http
        .get(`${emulator.url}/storage/v1/b/${bucket.name}/o/zipped.txt?alt=media`, (response) => {
          expect(response.headers['content-encoding']).toBeUndefined();
          expect(response.headers['x-goog-stored-content-encoding']).toBe('gzip');
          const chunks: Buffer[] = [];
          response
            .on('data', (chunk: Buffer) => chunks.push(chunk))
            .on('end', () => resolve(Buffer.concat(chunks).toString()));
        })
        .on('error', reject);
    });
    expect(plain).toBe(text);
  });

  test('the /download/storage/v1 path serves media too', async () => {
    await bucket.file('via/download').save('downloaded');
    const response = await fetch(
      `${emulator.url}/download/storage/v1/b/${bucket.name}/o/${encodeURIComponent('via/download')}?alt=media`,
    );
    expect(await response.text()).toBe('downloaded');
  });

  test('ranged downloads answer 206 with Content-Range', async () => {
    const data = Buffer.from('0123456789abcdefghij');
    const file = bucket.file('ranged');
    await file.save(data);

    expect((await file.download({ start: 5, end: 9 }))[0].toString()).toBe('56789');
    expect((await file.download({ start: 15 }))[0].toString()).toBe('fghij');
    expect((await file.download({ end: -3 }))[0].toString()).toBe('hij');

    const response = await fetch(`${emulator.url}/storage/v1/b/${bucket.name}/o/ranged?alt=media`, {
      headers: { Range: 'bytes=2-4' },
    });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe('bytes 2-4/20');
    expect(await response.text()).toBe('234');

    const beyond = await fetch(`${emulator.url}/storage/v1/b/${bucket.name}/o/ranged?alt=media`, {
      headers: { Range: 'bytes=50-' },
    });
    expect(beyond.status).toBe(416);
  });

  test('names with slashes, spaces and unicode are stored under the exact name', async () => {
    const names = ['a/b/c.txt', 'with space & symbols?#%.txt', 'ünïcødé/名前', '../not-a-path'];
    for (const name of names) await bucket.file(name).save(name);
    for (const name of names) {
      const [content] = await bucket.file(name).download();
      expect(content.toString()).toBe(name);
    }
  });

  test('a missing object is 404 with "No such object: bucket/name"', async () => {
    const error = await failure(bucket.file('missing/object').getMetadata());
    expect(error.code).toBe(404);
    expect(error.message).toBe(`No such object: ${bucket.name}/missing/object`);
    expect(error.errors?.[0]?.reason).toBe('notFound');
    expect(await bucket.file('missing/object').exists()).toEqual([false]);
    const download = await failure(bucket.file('missing/object').download());
    expect(download.code).toBe(404);
  });

  test('a client-sent hash that does not match the bytes is refused with 400', async () => {
    const file = bucket.file('bad-hash');
    const error = await failure(
      file.save('actual bytes', { resumable: false, metadata: { md5Hash: md5Base64(Buffer.from('other')) } }),
    );
    expect(error.code).toBe(400);
    expect(error.message).toContain("doesn't match calculated MD5 hash");
    expect(await file.exists()).toEqual([false]);

    const media = await fetch(`${emulator.url}/upload/storage/v1/b/${bucket.name}/o?uploadType=media&name=bad-crc`, {
      method: 'POST',
      headers: { 'X-Goog-Hash': `crc32c=${crc32cBase64(Buffer.from('other'))}` },
      body: 'actual bytes',
    });
    expect(media.status).toBe(400);
    expect(((await media.json()) as { error: { message: string } }).error.message).toContain(
      "doesn't match calculated CRC32C",
    );
  });

  test('patch merges metadata, clears nulls and bumps the metageneration', async () => {
    const file = bucket.file('patched');
    await file.save('x', { metadata: { contentType: 'text/plain', metadata: { keep: '1', drop: '2' } } });
    const generation = file.metadata.generation;

    const [first] = await file.setMetadata({ metadata: { drop: null, added: '3' }, cacheControl: 'no-cache' });
    expect(first).toMatchObject({
      metageneration: '2',
      generation,
      cacheControl: 'no-cache',
      metadata: { keep: '1', added: '3' },
    });
    expect(first.metadata).not.toHaveProperty('drop');

    // The service clears a field sent as null; the client's types do not allow null for it.
    const [second] = await file.setMetadata({
      cacheControl: null,
      contentType: 'application/json',
    } as unknown as FileMetadata);
    expect(second.metageneration).toBe('3');
    expect(second.cacheControl).toBeUndefined();
    expect(second.contentType).toBe('application/json');
    expect((await file.download())[0].toString()).toBe('x');
  });

  test('delete removes the object; a second delete is 404', async () => {
    const file = bucket.file('deleted');
    await file.save('bye');
    await file.delete();
    expect(await file.exists()).toEqual([false]);
    expect((await failure(file.delete())).code).toBe(404);
    await file.delete({ ignoreNotFound: true });
  });

  test('an object-level stats counter counts committed writes per object', async () => {
    const before = emulator.stats().writesByObject[`${bucket.name}/counted`] ?? 0;
    const file = bucket.file('counted');
    await file.save('1');
    await file.save('2');
    await file.setMetadata({ metadata: { a: 'b' } });
    await failure(file.save('3', { preconditionOpts: { ifGenerationMatch: 1 } }));
    const stats = emulator.stats();
    expect(stats.writesByObject[`${bucket.name}/counted`]).toBe(before + 3);

    const viaHttp = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as {
      writesByObject: Record<string, number>;
    };
    expect(viaHttp.writesByObject[`${bucket.name}/counted`]).toBe(before + 3);
  });
});

describe('preconditions', () => {
  let bucket: Bucket;
  beforeAll(async () => {
    bucket = await newBucket();
  });

  test('ifGenerationMatch: 0 creates only when absent', async () => {
    const file = bucket.file('create-only');
    await file.save('first', { preconditionOpts: { ifGenerationMatch: 0 } });
    const error = await failure(file.save('second', { preconditionOpts: { ifGenerationMatch: 0 } }));
    expect(error.code).toBe(412);
    expect((await file.download())[0].toString()).toBe('first');
  });

  test('mismatched ifGenerationMatch / ifMetagenerationMatch are 412 conditionNotMet', async () => {
    const file = bucket.file('guarded');
    await file.save('v1');
    const generation = Number(file.metadata.generation);

    const stale = await failure(
      file.save('v2', { resumable: false, preconditionOpts: { ifGenerationMatch: generation - 1 } }),
    );
    expect(stale.code).toBe(412);
    expect(stale.message).toBe('At least one of the pre-conditions you specified did not hold.');
    expect(stale.errors?.[0]?.reason).toBe('conditionNotMet');

    expect((await failure(file.setMetadata({ contentType: 'a/b' }, { ifMetagenerationMatch: 5 }))).code).toBe(412);
    expect((await failure(file.delete({ ifGenerationMatch: generation + 1 }))).code).toBe(412);
    expect((await failure(file.getMetadata({ ifGenerationMatch: generation + 1 }))).code).toBe(412);
    // The client has no download precondition option; the endpoint honours it.
    const download = await fetch(
      `${emulator.url}/storage/v1/b/${bucket.name}/o/guarded?alt=media&ifGenerationMatch=${generation + 1}`,
    );
    expect(download.status).toBe(412);

    await file.save('v2', { preconditionOpts: { ifGenerationMatch: generation } });
    expect((await file.download())[0].toString()).toBe('v2');
  });

  test('a GET whose ifGenerationNotMatch matches answers 304 Not Modified', async () => {
    const file = bucket.file('not-modified');
    await file.save('same');
    const generation = file.metadata.generation;
    expect((await failure(file.getMetadata({ ifGenerationNotMatch: generation }))).code).toBe(304);

    const raw = await fetch(
      `${emulator.url}/storage/v1/b/${bucket.name}/o/not-modified?alt=media&ifGenerationNotMatch=${generation}`,
    );
    expect(raw.status).toBe(304);
    const changed = await fetch(
      `${emulator.url}/storage/v1/b/${bucket.name}/o/not-modified?alt=media&ifGenerationNotMatch=1`,
    );
    expect(changed.status).toBe(200);
  });

  test.each([
    ['resumable', true],
    ['multipart', false],
  ])('racing writers with the same ifGenerationMatch: exactly one wins (%s)', async (_kind, resumable) => {
    const file = bucket.file(`race-${_kind}`);
    await file.save('initial');
    const generation = Number(file.metadata.generation);

    const writers = Array.from({ length: 8 }, (_, i) =>
      bucket.file(file.name).save(`writer ${i}`, { resumable, preconditionOpts: { ifGenerationMatch: generation } }),
    );
    const results = await Promise.allSettled(writers);
    const winners = results.flatMap((result, i) => (result.status === 'fulfilled' ? [i] : []));
    const losers = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');

    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(7);
    for (const loser of losers) expect((loser.reason as ApiError).code).toBe(412);
    expect((await file.download())[0].toString()).toBe(`writer ${winners[0]}`);
  });

  test('racing creators with ifGenerationMatch: 0: exactly one creates the object', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) =>
        bucket.file('race-create').save(`creator ${i}`, { preconditionOpts: { ifGenerationMatch: 0 } }),
      ),
    );
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    expect(
      results.filter((result) => result.status === 'rejected' && (result.reason as ApiError).code === 412),
    ).toHaveLength(5);
  });
});

describe('resumable uploads', () => {
  let bucket: Bucket;
  beforeAll(async () => {
    bucket = await newBucket();
  });

  async function uploadInChunks(file: File, data: Buffer, chunkSize: number): Promise<void> {
    const source = Readable.from(
      (function* () {
        for (let offset = 0; offset < data.length; offset += 64 * 1024) yield data.subarray(offset, offset + 64 * 1024);
      })(),
    );
    await pipeline(source, file.createWriteStream({ resumable: true, chunkSize }));
  }

  test('a 20 MB upload in 1 MiB chunks round-trips byte for byte', async () => {
    const data = randomBytes(20 * 1024 * 1024);
    const file = bucket.file('large/twenty-megabytes.bin');
    const requestsBefore = emulator.stats().requests;

    await uploadInChunks(file, data, 256 * 1024 * 4);

    // One request to open the session plus one per 1 MiB chunk.
    expect(emulator.stats().requests - requestsBefore).toBeGreaterThanOrEqual(21);
    const [metadata] = await file.getMetadata();
    expect(metadata.size).toBe(String(data.length));
    const [downloaded] = await file.download();
    expect(downloaded.length).toBe(data.length);
    expect(sha256(downloaded)).toBe(sha256(data));
  });

  test('a chunk size that is not a multiple of 256 KiB still round-trips (the client resends what was not kept)', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 17);
    const file = bucket.file('large/odd-chunks.bin');
    await uploadInChunks(file, data, 300 * 1024);
    expect(sha256((await file.download())[0])).toBe(sha256(data));
  });

  test('the session protocol: 308 with Range, status query, resume from the stored offset', async () => {
    const data = randomBytes(3 * 256 * 1024 + 1000);
    const file = bucket.file('resumed.bin');
    const [uri] = await file.createResumableUpload({ metadata: { contentType: 'application/x-resumed' } });

    const empty = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
    expect(empty.status).toBe(308);
    expect(empty.headers.get('range')).toBeNull();

    const firstPart = data.subarray(0, 256 * 1024);
    const partial = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes 0-${firstPart.length - 1}/*` },
      body: firstPart,
    });
    expect(partial.status).toBe(308);
    expect(partial.headers.get('range')).toBe(`bytes=0-${firstPart.length - 1}`);

    const status = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
    expect(status.status).toBe(308);
    expect(status.headers.get('range')).toBe(`bytes=0-${firstPart.length - 1}`);

    // Of a chunk that does not finish the upload, only whole multiples of 256 KiB are kept.
    const unaligned = data.subarray(firstPart.length, firstPart.length + 300 * 1024);
    const odd = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes ${firstPart.length}-${firstPart.length + unaligned.length - 1}/*` },
      body: unaligned,
    });
    expect(odd.status).toBe(308);
    expect(odd.headers.get('range')).toBe(`bytes=0-${2 * 256 * 1024 - 1}`);
    const stored = 2 * 256 * 1024;

    // The client resumes the session with the rest of the bytes from the stored offset on.
    await pipeline(
      Readable.from([data.subarray(stored)]),
      file.createWriteStream({ uri, resumeCRC32C: crc32cBase64(data.subarray(0, stored)), offset: stored }),
    );
    const [metadata] = await file.getMetadata();
    expect(metadata.contentType).toBe('application/x-resumed');
    expect(sha256((await file.download())[0])).toBe(sha256(data));

    // A finished session answers the final PUT again with the object.
    const again = await fetch(uri, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { name: string }).name).toBe('resumed.bin');
  });

  test('an offset beyond the stored bytes is refused; a cancelled session answers 499', async () => {
    const [uri] = await bucket.file('cancelled.bin').createResumableUpload();
    const ahead = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': 'bytes 1000-1999/*' },
      body: Buffer.alloc(1000),
    });
    expect(ahead.status).toBe(400);

    expect((await fetch(uri, { method: 'DELETE' })).status).toBe(499);
    const afterCancel = await fetch(uri, {
      method: 'PUT',
      headers: { 'Content-Range': 'bytes 0-9/10' },
      body: Buffer.alloc(10),
    });
    expect(afterCancel.status).toBe(499);
    expect(await bucket.file('cancelled.bin').exists()).toEqual([false]);
  });

  test('an empty object can be uploaded resumably and simply', async () => {
    await bucket.file('empty-resumable').save(Buffer.alloc(0));
    await bucket.file('empty-simple').save(Buffer.alloc(0), { resumable: false });
    for (const name of ['empty-resumable', 'empty-simple']) {
      const [metadata] = await bucket.file(name).getMetadata();
      expect(metadata.size).toBe('0');
      expect((await bucket.file(name).download())[0].length).toBe(0);
    }
  });
});

describe('listing', () => {
  let bucket: Bucket;
  const names = ['a/1', 'a/2', 'a/b/3', 'a/b/4', 'b/1', 'c', 'd/', 'd/x', 'e'];
  beforeAll(async () => {
    bucket = await newBucket();
    for (const name of names) await bucket.file(name).save(name);
  });

  const list = async (query: Record<string, unknown>) => {
    const [files, , response] = await bucket.getFiles({ autoPaginate: false, ...query });
    return {
      names: files.map((file) => file.name),
      prefixes: ((response as { prefixes?: string[] }).prefixes ?? []) as string[],
      nextPageToken: (response as { nextPageToken?: string }).nextPageToken,
    };
  };

  test('all objects in lexicographic order', async () => {
    const [files] = await bucket.getFiles();
    expect(files.map((file) => file.name)).toEqual([...names].sort());
  });

  test('prefix and delimiter give items and prefixes', async () => {
    expect(await list({ delimiter: '/' })).toEqual({
      names: ['c', 'e'],
      prefixes: ['a/', 'b/', 'd/'],
      nextPageToken: undefined,
    });
    expect(await list({ prefix: 'a/', delimiter: '/' })).toEqual({
      names: ['a/1', 'a/2'],
      prefixes: ['a/b/'],
      nextPageToken: undefined,
    });
    expect(await list({ prefix: 'a/b/' })).toMatchObject({ names: ['a/b/3', 'a/b/4'] });
    expect(await list({ prefix: 'd/', delimiter: '/', includeTrailingDelimiter: true })).toMatchObject({
      names: ['d/', 'd/x'],
    });
  });

  test('pagination with maxResults and pageToken visits everything exactly once', async () => {
    const seen: string[] = [];
    const prefixes: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const page = await list({ delimiter: '/', maxResults: 2, ...(pageToken && { pageToken }) });
      expect(page.names.length + page.prefixes.length).toBeLessThanOrEqual(2);
      seen.push(...page.names);
      prefixes.push(...page.prefixes);
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(seen).toEqual(['c', 'e']);
    expect(prefixes).toEqual(['a/', 'b/', 'd/']);
    expect(pages).toBe(3);

    // The client follows the tokens itself with autoPaginate.
    const [all] = await bucket.getFiles({ maxResults: 3 } as never);
    expect(all.length).toBeLessThanOrEqual(3);
    const [everything] = await bucket.getFiles({ autoPaginate: true });
    expect(everything).toHaveLength(names.length);
  });

  test('startOffset (inclusive) and endOffset (exclusive)', async () => {
    expect((await list({ startOffset: 'a/b', endOffset: 'c' })).names).toEqual(['a/b/3', 'a/b/4', 'b/1']);
    expect((await list({ startOffset: 'd/' })).names).toEqual(['d/', 'd/x', 'e']);
    expect((await list({ endOffset: 'a/2' })).names).toEqual(['a/1']);
  });

  test('matchGlob and partial responses (fields)', async () => {
    expect((await list({ matchGlob: 'a/**' })).names).toEqual(['a/1', 'a/2', 'a/b/3', 'a/b/4']);
    expect((await list({ matchGlob: 'a/*' })).names).toEqual(['a/1', 'a/2']);
    const response = await fetch(`${emulator.url}/storage/v1/b/${bucket.name}/o?prefix=b/&fields=items(name)`);
    expect(await response.json()).toEqual({ items: [{ name: 'b/1' }] });
  });
});

describe('versioned buckets', () => {
  test('old generations stay listable and readable; the bucket cannot be deleted until they are gone', async () => {
    const bucket = await newBucket({ versioning: { enabled: true } });
    const file = bucket.file('doc');
    await file.save('v1');
    const first = file.metadata.generation!;
    await file.save('v2');

    const [versions] = await bucket.getFiles({ versions: true });
    expect(versions.map((version) => version.metadata.generation)).toEqual([first, file.metadata.generation]);
    expect((await bucket.file('doc', { generation: first }).download())[0].toString()).toBe('v1');

    await file.delete();
    expect(await file.exists()).toEqual([false]);
    const [afterDelete] = await bucket.getFiles({ versions: true });
    expect(afterDelete).toHaveLength(2);
    expect((await failure(bucket.delete())).code).toBe(409);

    for (const version of afterDelete) await version.delete();
    await bucket.delete();
  });
});

describe('copy, rewrite, move and compose', () => {
  let bucket: Bucket;
  beforeAll(async () => {
    bucket = await newBucket();
  });

  test('copy (rewriteTo) within and across buckets keeps bytes and metadata', async () => {
    const source = bucket.file('source.txt');
    await source.save('copy me', { metadata: { contentType: 'text/plain', metadata: { tag: 'original' } } });
    const other = await newBucket();

    const [copy] = await source.copy('copies/one.txt');
    const [copyMetadata] = await copy.getMetadata();
    expect(copyMetadata).toMatchObject({
      contentType: 'text/plain',
      metadata: { tag: 'original' },
      md5Hash: source.metadata.md5Hash,
    });
    expect(copyMetadata.generation).not.toBe(source.metadata.generation);
    expect((await copy.download())[0].toString()).toBe('copy me');

    const [across] = await source.copy(other.file('elsewhere.txt'), { metadata: { tag: 'copied' } });
    expect((await across.download())[0].toString()).toBe('copy me');
    expect((await across.getMetadata())[0].metadata).toEqual({ tag: 'copied' });
    expect(emulator.stats().writesByKind.copy).toBeGreaterThanOrEqual(2);
  });

  test('copy honours destination preconditions and reports a missing source as 404', async () => {
    await bucket.file('exists-already').save('old');
    await bucket.file('copy-source').save('new');
    const error = await failure(
      bucket.file('copy-source').copy('exists-already', { preconditionOpts: { ifGenerationMatch: 0 } }),
    );
    expect(error.code).toBe(412);
    expect((await bucket.file('exists-already').download())[0].toString()).toBe('old');
    expect((await failure(bucket.file('no-source').copy('anywhere'))).code).toBe(404);
  });

  test('the rewriteTo endpoint answers a finished rewriteResponse', async () => {
    await bucket.file('rewrite-src').save('rewritten');
    const response = await fetch(
      `${emulator.url}/storage/v1/b/${bucket.name}/o/rewrite-src/rewriteTo/b/${bucket.name}/o/${encodeURIComponent('re/written')}`,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { done: boolean; resource: { name: string }; totalBytesRewritten: string };
    expect(body).toMatchObject({
      kind: 'storage#rewriteResponse',
      done: true,
      totalBytesRewritten: '9',
      resource: { name: 're/written' },
    });
  });

  test('move (copy + delete) and moveFileAtomic rename objects', async () => {
    await bucket.file('move/from').save('moving');
    await bucket.file('move/from').move('move/to');
    expect(await bucket.file('move/from').exists()).toEqual([false]);
    expect((await bucket.file('move/to').download())[0].toString()).toBe('moving');

    await bucket.file('move/to').moveFileAtomic('move/atomic');
    expect(await bucket.file('move/to').exists()).toEqual([false]);
    expect((await bucket.file('move/atomic').download())[0].toString()).toBe('moving');
  });

  test('compose concatenates sources into a composite object with a crc32c and no md5', async () => {
    const parts = ['alpha-', 'beta-', 'gamma'];
    for (const [i, part] of parts.entries()) await bucket.file(`parts/${i}`).save(part);

    const [combined] = await bucket.combine(
      parts.map((_, i) => bucket.file(`parts/${i}`)),
      bucket.file('combined.txt'),
    );
    const expected = Buffer.from(parts.join(''));
    const [metadata] = await combined.getMetadata();
    expect(metadata).toMatchObject({
      componentCount: 3,
      crc32c: crc32cBase64(expected),
      size: String(expected.length),
    });
    expect(metadata.md5Hash).toBeUndefined();
    expect((await combined.download())[0].toString()).toBe(parts.join(''));

    // Composite objects carry no MD5, so MD5 validation is refused as by the service.
    const md5Error = await failure(combined.download({ validation: 'md5' }));
    expect((md5Error as unknown as { code: string }).code).toBe('MD5_NOT_AVAILABLE');

    const nested = await bucket.combine([combined, bucket.file('parts/0')], 'nested.txt');
    expect((await nested[0].getMetadata())[0].componentCount).toBe(4);
  });

  test('compose refuses a stale source generation and more than 32 sources', async () => {
    await bucket.file('stale').save('one');
    const staleGeneration = Number(bucket.file('stale').metadata.generation ?? 0);
    await bucket.file('stale').save('two');
    const stale = await failure(bucket.combine([bucket.file('stale', { generation: staleGeneration - 1 })], 'never'));
    expect(stale.code).toBe(404);

    const tooMany = Array.from({ length: 33 }, () => bucket.file('stale'));
    const error = await failure(bucket.combine(tooMany, 'never'));
    expect(error.code).toBe(400);
  });
});

describe('client configuration', () => {
  test('STORAGE_EMULATOR_HOST alone (no apiEndpoint) reaches the emulator at the root path', async () => {
    // A separate plain node process: the client reads the real environment when it is constructed.
    const script = `
      const { Storage } = require('@google-cloud/storage');
      (async () => {
        const storage = new Storage({ projectId: 'test-project' });
        const [bucket] = await storage.createBucket('env-bucket-${process.pid}');
        await bucket.file('env/object').save('from env');
        const [content] = await bucket.file('env/object').download();
        const [files] = await bucket.getFiles();
        console.log(JSON.stringify({ content: content.toString(), names: files.map((f) => f.name) }));
      })().catch((error) => { console.error(error); process.exit(1); });`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
      cwd: path.resolve(__dirname, '../..'),
      env: { ...process.env, STORAGE_EMULATOR_HOST: emulator.url, METADATA_SERVER_DETECTION: 'none' },
    });
    expect(JSON.parse(stdout)).toEqual({ content: 'from env', names: ['env/object'] });
    expect(emulator.stats().writesByBucket[`env-bucket-${process.pid}`]).toBe(1);
  });

  test('an unsupported endpoint answers 400 (not retried) in the JSON error shape, naming the route', async () => {
    const bucket = await newBucket();
    const error = await failure(bucket.iam.getPolicy());
    expect(error.code).toBe(400);
    expect(error.errors?.[0]?.reason).toBe('notImplemented');
    expect(error.message).toContain(`storage emulator does not implement GET /storage/v1/b/${bucket.name}/iam`);
  });
});

describe('simulated per-object rate limit', () => {
  let limited: StorageEmulator;
  let client: Storage;
  beforeAll(async () => {
    limited = await startStorageEmulator({ logger: silentLogger, objectRateLimit: true });
    client = new Storage({ ...storageClientOptions(limited), retryOptions: { autoRetry: false } });
  });
  afterAll(async () => {
    await limited?.stop();
  });

  test('a second write to one object within a second is 429 rateLimitExceeded; other objects are unaffected', async () => {
    const [bucket] = await client.createBucket('rate-limited');
    await bucket.file('hot').save('1', { resumable: false });
    const error = await failure(bucket.file('hot').save('2', { resumable: false }));
    expect(error.code).toBe(429);
    expect(error.errors?.[0]?.reason).toBe('rateLimitExceeded');
    await bucket.file('cold').save('1', { resumable: false });
    expect(limited.stats().rateLimited).toBe(1);
    expect((await bucket.file('hot').download())[0].toString()).toBe('1');
  });

  test('the default emulator has no such limit', async () => {
    const bucket = await newBucket();
    for (let i = 0; i < 5; i++) await bucket.file('hot').save(String(i), { resumable: false });
    expect((await bucket.file('hot').download())[0].toString()).toBe('4');
  });
});

describe('emulator controls', () => {
  let own: StorageEmulator;
  beforeAll(async () => {
    own = await startStorageEmulator({ logger: silentLogger });
  });
  afterAll(async () => {
    await own?.stop();
  });

  test('health, stats reset and a full reset over HTTP', async () => {
    const client = new Storage(storageClientOptions(own));
    const [bucket] = await client.createBucket('to-be-reset');
    await bucket.file('o').save('x');
    expect(own.stats().objectWrites).toBe(1);

    expect(await (await fetch(`${own.url}/_emulator/health`)).json()).toEqual({ status: 'ok' });
    expect((await fetch(`${own.url}/_emulator/stats/reset`, { method: 'POST' })).status).toBe(204);
    expect(own.stats().objectWrites).toBe(0);

    expect((await fetch(`${own.url}/_emulator/reset`, { method: 'POST' })).status).toBe(204);
    expect((await client.getBuckets())[0]).toEqual([]);
    expect(await bucket.file('o').exists()).toEqual([false]);
  });
});
