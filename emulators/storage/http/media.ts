import { gunzipSync } from 'node:zlib';
import type { Request, Response } from 'express';
import { formatGoogHash } from '../hashes';
import type { ObjectVersion } from '../model';
import { parsePreconditions } from '../preconditions';
import { parseByteRange } from '../ranges';
import type { ObjectAddress, StorageService } from '../service';

/**
 * Serves object bytes (`alt=media`) with the headers the official client reads: `x-goog-hash`
 * (validated after download), `x-goog-generation`, `x-goog-metageneration`,
 * `x-goog-stored-content-length` and `x-goog-stored-content-encoding` (validation runs only when
 * that says `identity`, or `gzip` served as gzip).
 */
export async function sendMedia(
  req: Request,
  res: Response,
  service: StorageService,
  address: ObjectAddress,
): Promise<void> {
  let transcode = false;
  const { version, data, range } = await service.readObject(address, parsePreconditions(req.query), (object) => {
    // Decompressive transcoding, as the service: gzip objects are unzipped for clients that do not accept gzip.
    transcode = object.contentEncoding === 'gzip' && !acceptsGzip(req);
    return transcode || object.size === 0 ? undefined : parseByteRange(req.get('range'), object.size);
  });

  res.set(objectHeaders(version));
  let body = data;
  if (transcode) {
    body = tryGunzip(data);
  } else if (version.contentEncoding) {
    res.set('Content-Encoding', version.contentEncoding);
  }
  if (range) {
    res.status(206).set('Content-Range', `bytes ${range.start}-${range.end - 1}/${version.size}`);
  } else {
    res.status(200);
  }
  res.set('Content-Length', String(body.length));
  res.end(req.method === 'HEAD' ? undefined : body);
}

function objectHeaders(version: ObjectVersion): Record<string, string> {
  return {
    'Content-Type': version.contentType ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    'Cache-Control': version.cacheControl ?? 'no-cache, no-store, max-age=0, must-revalidate',
    ETag: `"${version.md5Hash ? Buffer.from(version.md5Hash, 'base64').toString('hex') : version.crc32c}"`,
    'Last-Modified': new Date(version.updated).toUTCString(),
    'x-goog-hash': formatGoogHash(version),
    'x-goog-generation': String(version.generation),
    'x-goog-metageneration': String(version.metageneration),
    'x-goog-stored-content-length': String(version.size),
    'x-goog-stored-content-encoding': version.contentEncoding ?? 'identity',
    'x-goog-storage-class': version.storageClass ?? 'STANDARD',
    ...(version.contentDisposition && { 'Content-Disposition': version.contentDisposition }),
    ...(version.contentLanguage && { 'Content-Language': version.contentLanguage }),
    ...(version.componentCount !== undefined && { 'x-goog-component-count': String(version.componentCount) }),
    ...Object.fromEntries(
      Object.entries(version.metadata ?? {})
        .filter(([key, value]) => HEADER_TOKEN.test(key) && HEADER_VALUE.test(value))
        .map(([key, value]) => [`x-goog-meta-${key}`, value]),
    ),
  };
}

/** User metadata becomes x-goog-meta-* headers only where HTTP allows the characters. */
const HEADER_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\x20-\x7e]*$/;

function acceptsGzip(req: Request): boolean {
  return /\bgzip\b/i.test(req.get('accept-encoding') ?? '');
}

function tryGunzip(data: Buffer): Buffer {
  try {
    return gunzipSync(data);
  } catch {
    return data; // not actually gzip: serve what is stored
  }
}
