/** The storage emulator's pure parts, without a server. */
import { CoalescingWriter } from '../../emulators/storage/coalescing-writer';
import { openEmulatedStorage } from '../../emulators/storage/emulator';
import { StorageApiError } from '../../emulators/storage/errors';
import { applyFieldMask } from '../../emulators/storage/field-mask';
import { globToRegExp } from '../../emulators/storage/glob';
import { listObjects } from '../../emulators/storage/listing';
import type { ObjectEntry, ObjectVersion } from '../../emulators/storage/model';
import { multipartBoundary, parseMultipart } from '../../emulators/storage/multipart';
import { applyPatch } from '../../emulators/storage/object-fields';
import {
  parseStorageEmulatorCommandLine,
  resolveStorageEmulatorOptions,
  StorageEmulatorSettingError,
} from '../../emulators/storage/options';
import {
  checkReadPreconditions,
  checkWritePreconditions,
  parsePreconditions,
} from '../../emulators/storage/preconditions';
import { ObjectRateLimiter } from '../../emulators/storage/rate-limit';
import { parseByteRange, parseUploadRange } from '../../emulators/storage/ranges';
import { silentLogger } from '../../emulators/storage/testing';

const codeOf = (work: () => unknown): number | undefined => {
  try {
    work();
  } catch (error) {
    return (error as StorageApiError).code;
  }
  return undefined;
};

describe('listing', () => {
  const version = (name: string, generation = 1): ObjectVersion => ({
    bucket: 'b',
    name,
    generation,
    metageneration: 1,
    blobId: '00000000-0000-0000-0000-000000000000',
    size: 0,
    crc32c: 'AAAAAA==',
    timeCreated: '',
    updated: '',
  });
  const bucketOf = (names: string[]) => {
    const entries = new Map<string, ObjectEntry>(names.map((name) => [name, { live: version(name), noncurrent: [] }]));
    return { names: [...names].sort(), entries };
  };

  const pages = (names: string[], options: Parameters<typeof listObjects>[2]) => {
    const bucket = bucketOf(names);
    const result: Array<{ items: string[]; prefixes: string[] }> = [];
    let pageToken: string | undefined;
    do {
      const page = listObjects(bucket.names, bucket.entries, { ...options, ...(pageToken && { pageToken }) });
      result.push({ items: page.items.map((item) => item.name), prefixes: page.prefixes });
      pageToken = page.nextPageToken;
    } while (pageToken && result.length < 100);
    return result;
  };

  test('a page of exactly maxResults entries has no token when nothing follows', () => {
    const bucket = bucketOf(['a', 'b']);
    expect(listObjects(bucket.names, bucket.entries, { maxResults: 2 }).nextPageToken).toBeUndefined();
    expect(listObjects(bucket.names, bucket.entries, { maxResults: 1 }).nextPageToken).toBeDefined();
  });

  test('prefixes are reported once even when their objects span pages', () => {
    const result = pages(['a/1', 'a/2', 'a/3', 'b', 'c/1', 'c/2'], { delimiter: '/', maxResults: 1 });
    expect(result).toEqual([
      { items: [], prefixes: ['a/'] },
      { items: ['b'], prefixes: [] },
      { items: [], prefixes: ['c/'] },
    ]);
  });

  test('a folder object with includeTrailingDelimiter resumes correctly between it and its prefix', () => {
    const result = pages(['d/', 'd/x', 'e'], { delimiter: '/', includeTrailingDelimiter: true, maxResults: 1 });
    expect(result.flatMap((page) => page.items)).toEqual(['d/', 'e']);
    expect(result.flatMap((page) => page.prefixes)).toEqual(['d/']);
  });

  test('noncurrent generations are listed only with versions, oldest first', () => {
    const entries = new Map<string, ObjectEntry>([
      ['doc', { live: version('doc', 3), noncurrent: [version('doc', 1), version('doc', 2)] }],
    ]);
    expect(listObjects(['doc'], entries, {}).items.map((item) => item.generation)).toEqual([3]);
    const paged: number[] = [];
    let pageToken: string | undefined;
    do {
      const page = listObjects(['doc'], entries, { versions: true, maxResults: 1, ...(pageToken && { pageToken }) });
      paged.push(...page.items.map((item) => item.generation));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(paged).toEqual([1, 2, 3]);
  });

  test('a token it did not issue is 400', () => {
    const bucket = bucketOf(['a']);
    expect(codeOf(() => listObjects(bucket.names, bucket.entries, { pageToken: 'garbage' }))).toBe(400);
  });
});

describe('preconditions', () => {
  const current = { generation: 7, metageneration: 2 };

  test('writes: 0 means "must not exist"; any miss is 412', () => {
    expect(codeOf(() => checkWritePreconditions({ ifGenerationMatch: 0 }, undefined))).toBeUndefined();
    expect(codeOf(() => checkWritePreconditions({ ifGenerationMatch: 0 }, current))).toBe(412);
    expect(
      codeOf(() => checkWritePreconditions({ ifGenerationMatch: 7, ifMetagenerationMatch: 2 }, current)),
    ).toBeUndefined();
    expect(codeOf(() => checkWritePreconditions({ ifMetagenerationNotMatch: 2 }, current))).toBe(412);
    expect(codeOf(() => checkWritePreconditions({ ifGenerationNotMatch: 0 }, undefined))).toBe(412);
  });

  test('reads: a matching "not match" is 304, a failed "match" is 412', () => {
    expect(codeOf(() => checkReadPreconditions({ ifGenerationNotMatch: 7 }, current))).toBe(304);
    expect(codeOf(() => checkReadPreconditions({ ifMetagenerationMatch: 1 }, current))).toBe(412);
    expect(codeOf(() => checkReadPreconditions({ ifGenerationNotMatch: 6 }, current))).toBeUndefined();
  });

  test('query parsing reads target and source preconditions and rejects non-integers', () => {
    expect(parsePreconditions({ ifGenerationMatch: '0', ifSourceGenerationMatch: '5' })).toEqual({
      ifGenerationMatch: 0,
    });
    expect(parsePreconditions({ ifSourceGenerationMatch: '5' }, 'source')).toEqual({ ifGenerationMatch: 5 });
    expect(codeOf(() => parsePreconditions({ ifGenerationMatch: 'abc' }))).toBe(400);
  });
});

describe('ranges', () => {
  test('download ranges: a-b, a-, -n; past the end is 416; unparsable is ignored', () => {
    expect(parseByteRange('bytes=0-9', 100)).toEqual({ start: 0, end: 10 });
    expect(parseByteRange('bytes=90-', 100)).toEqual({ start: 90, end: 100 });
    expect(parseByteRange('bytes=95-200', 100)).toEqual({ start: 95, end: 100 });
    expect(parseByteRange('bytes=-10', 100)).toEqual({ start: 90, end: 100 });
    expect(parseByteRange('bytes=-500', 100)).toEqual({ start: 0, end: 100 });
    expect(codeOf(() => parseByteRange('bytes=100-', 100))).toBe(416);
    expect(parseByteRange('bytes=0-1,5-6', 100)).toBeUndefined();
    expect(parseByteRange('items=0-1', 100)).toBeUndefined();
  });

  test('upload Content-Range forms the client sends', () => {
    expect(parseUploadRange('bytes */*', 0)).toEqual({ kind: 'status' });
    expect(parseUploadRange('bytes */42', 0)).toEqual({ kind: 'status', total: 42 });
    expect(parseUploadRange('bytes 0-262143/*', 262144)).toEqual({ kind: 'data', first: 0, last: 262143 });
    expect(parseUploadRange('bytes 10-*/*', 5)).toEqual({ kind: 'data', first: 10 });
    expect(parseUploadRange('bytes 0--1/0', 0)).toEqual({ kind: 'data', first: 0, last: -1, total: 0 });
    expect(parseUploadRange(undefined, 7)).toEqual({ kind: 'data', first: 0, last: 6, total: 7 });
    expect(codeOf(() => parseUploadRange('bytes=0-1', 2))).toBe(400);
  });
});

describe('multipart/related', () => {
  test('splits the metadata and a binary data part without decoding it', () => {
    const data = Buffer.from([0, 13, 10, 45, 45, 255, 13, 10]);
    const body = Buffer.concat([
      Buffer.from(
        '--xyz\r\nContent-Type: application/json\r\n\r\n{"name":"n"}\r\n--xyz\r\nContent-Type: image/png\r\n\r\n',
      ),
      data,
      Buffer.from('\r\n--xyz--'),
    ]);
    expect(multipartBoundary('multipart/related; boundary=xyz')).toBe('xyz');
    expect(multipartBoundary('multipart/related; boundary="q u"')).toBe('q u');
    const [metadata, content] = parseMultipart(body, 'xyz');
    expect(metadata?.headers['content-type']).toBe('application/json');
    expect(metadata?.body.toString()).toBe('{"name":"n"}');
    expect(content?.headers['content-type']).toBe('image/png');
    expect(content?.body.equals(data)).toBe(true);
  });

  test('a body without its boundary is 400', () => {
    expect(codeOf(() => parseMultipart(Buffer.from('nothing here'), 'xyz'))).toBe(400);
  });
});

describe('partial responses and globs', () => {
  test('fields selects nested paths and sub-selections inside arrays', () => {
    const resource = { kind: 'k', items: [{ name: 'a', size: '1', metadata: { x: '1', y: '2' } }], nextPageToken: 't' };
    expect(applyFieldMask(resource, 'items(name,metadata/x),nextPageToken')).toEqual({
      items: [{ name: 'a', metadata: { x: '1' } }],
      nextPageToken: 't',
    });
    expect(applyFieldMask(resource, undefined)).toBe(resource);
    expect(codeOf(() => applyFieldMask(resource, 'items(name'))).toBe(400);
  });

  test('matchGlob: * stays within a segment, ** crosses them, {a,b} and [..] work', () => {
    expect(globToRegExp('a/*.txt').test('a/b.txt')).toBe(true);
    expect(globToRegExp('a/*.txt').test('a/b/c.txt')).toBe(false);
    expect(globToRegExp('a/**.txt').test('a/b/c.txt')).toBe(true);
    expect(globToRegExp('**/c.txt').test('c.txt')).toBe(true);
    expect(globToRegExp('{x,y}/[0-9]?').test('y/7z')).toBe(true);
    expect(globToRegExp('[!a]*').test('abc')).toBe(false);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });
});

describe('object metadata patches', () => {
  test('null clears a field, metadata merges key by key', () => {
    const patched = applyPatch(
      { contentType: 'a/b', cacheControl: 'x', metadata: { keep: '1', drop: '2' } },
      {
        cacheControl: null,
        metadata: { drop: null, added: 3 },
      },
    );
    expect(patched).toEqual({ contentType: 'a/b', metadata: { keep: '1', added: '3' } });
    expect(applyPatch({ metadata: { a: '1' } }, { metadata: null })).toEqual({});
    expect(codeOf(() => applyPatch({}, { temporaryHold: 'yes' }))).toBe(400);
  });
});

describe('rate limiter', () => {
  test('one mutation per second per object, with its own budget per name', () => {
    let now = 0;
    const limiter = new ObjectRateLimiter({ writesPerSecond: 1, burst: 1 }, () => now);
    limiter.take('b', 'hot');
    expect(codeOf(() => limiter.take('b', 'hot'))).toBe(429);
    limiter.take('b', 'other');
    now = 999;
    expect(codeOf(() => limiter.take('b', 'hot'))).toBe(429);
    now = 2000;
    expect(codeOf(() => limiter.take('b', 'hot'))).toBeUndefined();
  });
});

describe('coalescing writer', () => {
  const waitFor = async (condition: () => boolean) => {
    for (let turn = 0; turn < 100 && !condition(); turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(condition()).toBe(true);
  };

  test('writes to one key never overlap, run in order, and coalesce while one is queued', async () => {
    const writer = new CoalescingWriter();
    const log: string[] = [];
    const running = new Map<string, number>();
    let release!: () => void;
    const firstBlocked = new Promise<void>((resolve) => (release = resolve));
    const task = (key: string, label: string, wait?: Promise<void>) => async () => {
      running.set(key, (running.get(key) ?? 0) + 1);
      expect(running.get(key)).toBe(1);
      log.push(`start ${label}`);
      await wait;
      log.push(`end ${label}`);
      running.set(key, running.get(key)! - 1);
    };

    const first = writer.write('k', task('k', '1', firstBlocked));
    // Asked before the first write started, a second write shares it: it will read the newest state anyway.
    expect(writer.write('k', task('k', 'not run'))).toBe(first);
    await waitFor(() => log.includes('start 1'));
    const second = writer.write('k', task('k', '2'));
    const third = writer.write('k', task('k', '3'));
    expect(third).toBe(second);
    const other = writer.write('other', task('other', 'other'));
    await other;
    release();
    await Promise.all([first, second, third]);
    expect(log).toEqual(['start 1', 'start other', 'end other', 'end 1', 'start 2', 'end 2']);
    await writer.idle();
  });
});

describe('options', () => {
  test('flags win over environment variables; defaults fill the rest', () => {
    expect(
      parseStorageEmulatorCommandLine(['--port', '4443', '--data-dir', '/tmp/d'], {
        STORAGE_EMULATOR_PORT: '1',
        STORAGE_EMULATOR_LISTEN_HOST: '0.0.0.0',
      }),
    ).toEqual({
      port: 4443,
      dataDir: '/tmp/d',
      host: '0.0.0.0',
    });
    expect(parseStorageEmulatorCommandLine([], { STORAGE_EMULATOR_OBJECT_RATE_LIMIT: 'true' })).toEqual({
      objectRateLimit: true,
    });
    const resolved = resolveStorageEmulatorOptions({ logger: silentLogger });
    expect(resolved).toMatchObject({ host: '127.0.0.1', port: 0, dataDir: undefined, objectRateLimit: undefined });
  });

  test('bad settings fail at start-up with an error that names them', () => {
    expect(() => parseStorageEmulatorCommandLine(['--port', 'eighty'], {})).toThrow(/port/);
    expect(() => parseStorageEmulatorCommandLine(['--bogus'], {})).toThrow(StorageEmulatorSettingError);
    expect(() => resolveStorageEmulatorOptions({ port: 70_000 })).toThrow(/port=70000/);
    expect(() => resolveStorageEmulatorOptions({ objectRateLimit: { writesPerSecond: 0 } })).toThrow(/writesPerSecond/);
  });
});

describe('commits', () => {
  /**
   * Writers that reach the service in the same tick: if the precondition check and the commit
   * were split by an await (e.g. staging the bytes), several would pass the check before any
   * committed. This is deterministic where racing HTTP clients are not.
   */
  test('same-tick writers with one ifGenerationMatch: exactly one commits', async () => {
    const { service, close } = await openEmulatedStorage(resolveStorageEmulatorOptions({ logger: silentLogger }));
    await service.insertBucket({ name: 'atomic' });
    const insert = (data: string, ifGenerationMatch: number) =>
      service.insertObject({
        bucket: 'atomic',
        name: 'o',
        data: Buffer.from(data),
        fields: {},
        preconditions: { ifGenerationMatch },
        providedHashes: {},
      });

    const creators = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => insert(`create ${i}`, 0)));
    expect(creators.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const generation = service.getObject({ bucket: 'atomic', name: 'o' }, {}).generation;

    const writers = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => insert(`write ${i}`, generation)));
    expect(writers.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    for (const result of writers) {
      if (result.status === 'rejected') expect((result.reason as StorageApiError).code).toBe(412);
    }
    expect(service.statsSnapshot().writesByObject['atomic/o']).toBe(2);
    await close();
  });
});

test('errors carry the JSON API error body', () => {
  const error = new StorageApiError(404, 'notFound', 'No such object: b/o');
  expect(error.toBody()).toEqual({
    error: {
      code: 404,
      message: 'No such object: b/o',
      errors: [{ message: 'No such object: b/o', domain: 'global', reason: 'notFound' }],
    },
  });
});
