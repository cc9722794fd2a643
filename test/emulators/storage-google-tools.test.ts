/**
 * The storage emulator answering what Google's own tools send, on the wire (always run):
 * gcloud / gsutil / google-api-python-client multipart bodies (quoted boundaries, LF lines),
 * the `/resumable/upload` path, `versions=True`, `storageLayout`, the JSON batch endpoint, ACL
 * reads and predefined ACLs, and the behaviour nodejs-storage's system tests expect (retention
 * policies and holds enforced, int64 fields as strings, normalized bucket fields, 8 KiB metadata).
 */
import { Storage, type ApiError } from '@google-cloud/storage';
import { startStorageEmulator, type StorageEmulator } from '../../emulators/storage';
import { silentLogger, storageClientOptions } from '../../emulators/storage/testing';
import { parseMultipart, multipartBoundary } from '../../emulators/storage/multipart';

process.env.METADATA_SERVER_DETECTION = 'none';

let emulator: StorageEmulator;
let storage: Storage;
let bucketCount = 0;

beforeAll(async () => {
  emulator = await startStorageEmulator({ logger: silentLogger });
  storage = new Storage({ ...storageClientOptions(emulator), retryOptions: { autoRetry: false } });
});

afterAll(async () => {
  await emulator?.stop();
});

async function newBucket(resource: Record<string, unknown> = {}, query = ''): Promise<string> {
  const name = `tools-${process.pid}-${++bucketCount}`;
  const res = await call('POST', `/storage/v1/b?project=p${query}`, { json: { name, ...resource } });
  expect(res.status).toBe(200);
  return name;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

async function call(
  method: string,
  path: string,
  options: { json?: unknown; body?: string; contentType?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  let body: string | undefined = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] = 'application/json';
  }
  if (options.contentType) headers['content-type'] = options.contentType;
  const response = await fetch(`${emulator.url}${path}`, { method, headers, ...(body !== undefined && { body }) });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** A multipart/related upload body the way gcloud builds it: LF line endings, the given boundary. */
function multipartBody(boundary: string, metadata: object, data: string, lineBreak: '\n' | '\r\n'): string {
  return [
    `--${boundary}`,
    'Content-Type: application/json',
    '',
    JSON.stringify(metadata),
    `--${boundary}`,
    'Content-Type: text/plain',
    '',
    data,
    `--${boundary}--`,
    '',
  ].join(lineBreak);
}

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    return error as ApiError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

describe('multipart parsing', () => {
  test.each([
    ['single-quoted, LF (gcloud, gsutil)', `multipart/related; boundary='===============7330845974216740156=='`, '\n'],
    ['double-quoted, LF (google-api-python-client)', 'multipart/related; boundary="===============0123456789=="', '\n'],
    ['bare, CRLF (the Node client)', 'multipart/related; boundary=abc123', '\r\n'],
  ] as const)('an upload with a %s boundary stores exactly the data part', async (_label, contentType, lineBreak) => {
    const bucket = await newBucket();
    const boundary = multipartBoundary(contentType)!;
    expect(boundary).not.toMatch(/['"]/);
    const data = 'line one\nline two\r\nend';
    const res = await call('POST', `/upload/storage/v1/b/${bucket}/o?uploadType=multipart`, {
      body: multipartBody(boundary, { name: 'dir/file.txt', metadata: { tool: 'gcloud' } }, data, lineBreak),
      contentType,
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      name: 'dir/file.txt',
      size: String(Buffer.byteLength(data)),
      contentType: 'text/plain',
      metadata: { tool: 'gcloud' },
    });
    const [content] = await storage.bucket(bucket).file('dir/file.txt').download();
    expect(content.toString()).toBe(data);
  });

  test('the parser keeps binary bytes and tells a body with no delimiter apart', () => {
    const binary = Buffer.from([0, 13, 10, 45, 45, 255, 10]);
    const body = Buffer.concat([Buffer.from('--b\nContent-Type: x\n\n'), binary, Buffer.from('\n--b--\n')]);
    const [part] = parseMultipart(body, 'b');
    expect(part!.body.equals(binary)).toBe(true);
    expect(() => parseMultipart(Buffer.from('no delimiter here'), 'b')).toThrow(/no boundary delimiter/);
  });
});

describe('routes gcloud uses', () => {
  test('a resumable upload under /resumable/upload/storage/v1 (gcloud, 8 MiB and more)', async () => {
    const bucket = await newBucket();
    const start = await fetch(
      `${emulator.url}/resumable/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=big.bin`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=UTF-8',
          'x-upload-content-type': 'application/octet-stream',
        },
        body: '{}',
      },
    );
    expect(start.status).toBe(200);
    const session = start.headers.get('location')!;
    expect(session).toContain('/resumable/upload/storage/v1/');
    const data = Buffer.alloc(300_000, 7);
    const put = await fetch(session, {
      method: 'PUT',
      headers: { 'content-range': `bytes 0-${data.length - 1}/${data.length}` },
      body: new Uint8Array(data),
    });
    expect(put.status).toBe(200);
    expect(((await put.json()) as { size: string }).size).toBe(String(data.length));
  });

  test('versions=True (Python spelling) lists noncurrent generations', async () => {
    const bucket = await newBucket({ versioning: { enabled: true } });
    const file = storage.bucket(bucket).file('v.txt');
    await file.save('one');
    await file.save('two');
    const withTrue = await call('GET', `/storage/v1/b/${bucket}/o?versions=True`);
    expect(withTrue.json.items).toHaveLength(2);
    const withFalse = await call('GET', `/storage/v1/b/${bucket}/o?versions=False`);
    expect(withFalse.json.items).toHaveLength(1);
  });

  test('deleting a named generation removes it for good, so rm -r can empty a versioned bucket', async () => {
    const bucket = await newBucket({ versioning: { enabled: true } });
    const file = storage.bucket(bucket).file('v.txt');
    await file.save('one');
    const [live] = await file.getMetadata();
    const res = await call('DELETE', `/storage/v1/b/${bucket}/o/v.txt?generation=${live.generation}`);
    expect(res.status).toBe(204);
    expect((await call('GET', `/storage/v1/b/${bucket}/o?versions=True`)).json.items).toBeUndefined();
    expect((await call('DELETE', `/storage/v1/b/${bucket}`)).status).toBe(204);
  });

  test('storageLayout and managedFolders answer as the service does; a missing bucket is 404', async () => {
    const bucket = await newBucket({ location: 'us-central1' });
    const layout = await call('GET', `/storage/v1/b/${bucket}/storageLayout`);
    expect(layout.json).toEqual({
      kind: 'storage#storageLayout',
      bucket,
      location: 'US-CENTRAL1',
      locationType: 'region',
      hierarchicalNamespace: { enabled: false },
    });
    expect((await call('GET', `/storage/v1/b/${bucket}/managedFolders`)).json).toEqual({
      kind: 'storage#managedFolders',
    });
    expect((await call('GET', '/storage/v1/b/no-such-bucket-here/storageLayout')).status).toBe(404);
  });

  test('a route the emulator does not serve answers 400 at once, naming the route and the emulator', async () => {
    const bucket = await newBucket();
    const res = await call('GET', `/storage/v1/b/${bucket}/notificationConfigs`);
    expect(res.status).toBe(400);
    expect(res.json.error.errors[0].reason).toBe('notImplemented');
    expect(res.json.error.message).toContain(
      `storage emulator does not implement GET /storage/v1/b/${bucket}/notificationConfigs`,
    );
  });
});

describe('the JSON batch endpoint', () => {
  test('serves each part in order and answers multipart/mixed with matching Content-IDs (LF request body)', async () => {
    const bucket = await newBucket();
    await storage.bucket(bucket).file('a').save('A');
    await storage.bucket(bucket).file('b').save('B');
    const body = [
      '--===batch==',
      'Content-Type: application/http',
      'Content-ID: <req+1>',
      '',
      `DELETE /storage/v1/b/${bucket}/o/a HTTP/1.1`,
      '',
      '',
      '--===batch==',
      'Content-Type: application/http',
      'Content-ID: <req+2>',
      '',
      `PATCH /storage/v1/b/${bucket}/o/b?alt=json HTTP/1.1`,
      'Content-Type: application/json',
      '',
      '{"metadata":{"k":"v"}}',
      '--===batch==',
      'Content-Type: application/http',
      'Content-ID: <req+3>',
      '',
      `GET /storage/v1/b/${bucket}/o/missing HTTP/1.1`,
      '',
      '',
      '--===batch==--',
      '',
    ].join('\n');
    const res = await call('POST', '/batch/storage/v1', {
      body,
      contentType: 'multipart/mixed; boundary="===batch=="',
    });
    expect(res.status).toBe(200);
    const boundary = multipartBoundary(res.headers.get('content-type') ?? undefined, 'mixed')!;
    const parts = parseMultipart(Buffer.from(res.text), boundary);
    expect(parts.map((part) => part.headers['content-id'])).toEqual([
      '<response-req+1>',
      '<response-req+2>',
      '<response-req+3>',
    ]);
    const statusLines = parts.map((part) => part.body.toString().split('\r\n')[0]);
    expect(statusLines).toEqual(['HTTP/1.1 204 No Content', 'HTTP/1.1 200 OK', 'HTTP/1.1 404 Not Found']);
    expect(parts[1]!.body.toString()).toContain('"k":"v"');
    expect(await storage.bucket(bucket).file('a').exists()).toEqual([false]);
  });

  test('more than 100 calls in one batch is 400', async () => {
    const parts = Array.from({ length: 101 }, () =>
      ['--x', 'Content-Type: application/http', '', 'GET /storage/v1/b HTTP/1.1', '', ''].join('\r\n'),
    );
    const res = await call('POST', '/batch/storage/v1', {
      body: `${parts.join('\r\n')}\r\n--x--\r\n`,
      contentType: 'multipart/mixed; boundary=x',
    });
    expect(res.status).toBe(400);
    expect(res.json.error.message).toContain('at most 100');
  });
});

describe('ACLs', () => {
  test('object, bucket and default object ACL reads reflect the predefined ACLs given', async () => {
    const bucket = await newBucket({}, '&predefinedAcl=publicRead&predefinedDefaultObjectAcl=bucketOwnerRead');
    const bucketAcl = await call('GET', `/storage/v1/b/${bucket}/acl`);
    expect(bucketAcl.json.kind).toBe('storage#bucketAccessControls');
    expect(bucketAcl.json.items).toContainEqual(expect.objectContaining({ entity: 'allUsers', role: 'READER' }));
    const defaults = await call('GET', `/storage/v1/b/${bucket}/defaultObjectAcl`);
    expect(defaults.json.items.map((e: { entity: string; role: string }) => `${e.entity}:${e.role}`)).toEqual([
      'project-owners-0:OWNER',
      'project-editors-0:READER',
    ]);

    await storage.bucket(bucket).file('default').save('x');
    await storage.bucket(bucket).file('public').save('x', { predefinedAcl: 'publicRead' });
    const inherited = await call('GET', `/storage/v1/b/${bucket}/o/default/acl`);
    expect(inherited.json.items.map((e: { entity: string }) => e.entity)).toEqual([
      'project-owners-0',
      'project-editors-0',
    ]);
    const [publicAcl] = await storage.bucket(bucket).file('public').acl.get();
    expect(publicAcl).toContainEqual(expect.objectContaining({ entity: 'allUsers', role: 'READER' }));
    const one = await call('GET', `/storage/v1/b/${bucket}/o/public/acl/allUsers`);
    expect(one.json).toMatchObject({
      kind: 'storage#objectAccessControl',
      entity: 'allUsers',
      role: 'READER',
      object: 'public',
    });
    expect((await call('GET', `/storage/v1/b/${bucket}/o/public/acl/user-nobody@example.com`)).status).toBe(404);
  });

  test('an unknown predefined ACL is 400; uniform bucket-level access refuses legacy ACLs', async () => {
    const bucket = await newBucket({ iamConfiguration: { uniformBucketLevelAccess: { enabled: true } } });
    expect(
      (
        await call('POST', `/upload/storage/v1/b/${bucket}/o?uploadType=media&name=x&predefinedAcl=everyone`, {
          body: 'x',
        })
      ).status,
    ).toBe(400);
    const refused = await call(
      'POST',
      `/upload/storage/v1/b/${bucket}/o?uploadType=media&name=x&predefinedAcl=publicRead`,
      { body: 'x' },
    );
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toContain('uniform bucket-level access');
    await storage.bucket(bucket).file('y').save('y');
    expect((await call('GET', `/storage/v1/b/${bucket}/o/y/acl`)).status).toBe(400);
  });
});

describe('retention policies and holds (as nodejs-storage system tests expect)', () => {
  test('a retention policy blocks overwrite and delete with 403; retentionPeriod is an int64 string', async () => {
    const bucket = storage.bucket(await newBucket({ retentionPolicy: { retentionPeriod: 3600 } }));
    const [metadata] = await bucket.getMetadata();
    expect(metadata.retentionPolicy).toMatchObject({ retentionPeriod: '3600', effectiveTime: expect.any(String) });
    const file = bucket.file('kept');
    await file.save('v1');
    const [object] = await file.getMetadata();
    expect(Date.parse(object.retentionExpirationTime!) - Date.parse(object.timeCreated!)).toBe(3_600_000);
    expect((await failure(file.save('v2'))).code).toBe(403);
    expect((await failure(file.delete())).code).toBe(403);
    // Once the policy is removed, the object can go.
    await bucket.removeRetentionPeriod();
    await file.delete();
  });

  test('lockRetentionPolicy locks it: it can grow but not shrink or be removed', async () => {
    const bucket = storage.bucket(await newBucket({ retentionPolicy: { retentionPeriod: '60' } }));
    const [before] = await bucket.getMetadata();
    const [locked] = (await bucket.lock(before.metageneration!)) as [{ retentionPolicy?: unknown }];
    expect(locked.retentionPolicy).toMatchObject({ isLocked: true, retentionPeriod: '60' });
    expect((await failure(bucket.setRetentionPeriod(30))).code).toBe(403);
    expect((await failure(bucket.removeRetentionPeriod())).code).toBe(403);
    const [grown] = await bucket.setRetentionPeriod(120);
    expect(grown.retentionPolicy).toMatchObject({ isLocked: true, retentionPeriod: '120' });
    // The service requires ifMetagenerationMatch to lock.
    expect((await call('POST', `/storage/v1/b/${bucket.name}/lockRetentionPolicy`)).status).toBe(400);
  });

  test('event-based and temporary holds block delete and overwrite; default event-based holds apply to new objects', async () => {
    const bucket = storage.bucket(await newBucket());
    await bucket.setMetadata({ defaultEventBasedHold: true });
    const file = bucket.file('held');
    await file.save('x');
    const [metadata] = await file.getMetadata();
    expect(metadata.eventBasedHold).toBe(true);
    expect((await failure(file.delete())).code).toBe(403);
    await file.setMetadata({ eventBasedHold: false, temporaryHold: true });
    expect((await failure(file.save('y'))).code).toBe(403);
    await file.setMetadata({ temporaryHold: false });
    await file.delete();
  });
});

describe('bucket and object fields as the service returns them', () => {
  test('locations are upper-cased with their type; autoclass gets a toggleTime', async () => {
    const region = storage.bucket(await newBucket({ location: 'europe-west1', autoclass: { enabled: true } }));
    const [metadata] = await region.getMetadata();
    expect(metadata).toMatchObject({ location: 'EUROPE-WEST1', locationType: 'region' });
    expect(metadata.autoclass).toMatchObject({
      enabled: true,
      toggleTime: expect.any(String),
      terminalStorageClass: 'NEARLINE',
    });
    const [multi] = await storage.bucket(await newBucket({ location: 'eu' })).getMetadata();
    expect(multi).toMatchObject({ location: 'EU', locationType: 'multi-region' });
    const [dual] = await storage.bucket(await newBucket({ location: 'nam4' })).getMetadata();
    expect(dual).toMatchObject({ location: 'NAM4', locationType: 'dual-region' });
  });

  test('removing every label or every CORS rule removes the field', async () => {
    const bucket = storage.bucket(await newBucket({ labels: { a: '1' }, cors: [{ origin: ['*'], method: ['GET'] }] }));
    const [unlabelled] = await bucket.setMetadata({ labels: { a: null } });
    expect(unlabelled.labels).toBeUndefined();
    const [noCors] = await bucket.setCorsConfiguration([]);
    expect(noCors.cors).toBeUndefined();
  });

  test('custom metadata over 8 KiB is refused with 400', async () => {
    const file = storage.bucket(await newBucket()).file('meta');
    expect((await failure(file.save('x', { metadata: { metadata: { big: 'x'.repeat(2 * 1024 * 1024) } } }))).code).toBe(
      400,
    );
    await file.save('x', { metadata: { metadata: { fits: 'x'.repeat(8000) } } });
    expect((await failure(file.setMetadata({ metadata: { more: 'x'.repeat(500) } }))).code).toBe(400);
  });
});
