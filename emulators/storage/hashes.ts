import { createHash, type Hash } from 'node:crypto';
import { CRC32C } from '@google-cloud/storage';
import { hashMismatch } from './errors';

export interface ContentHashes {
  /** base64 of the big-endian CRC32C, as the service reports it. */
  crc32c: string;
  /** base64 MD5 digest. */
  md5Hash: string;
}

/** Hashes that a client sent with an upload (metadata fields or the X-Goog-Hash header). */
export interface ProvidedHashes {
  crc32c?: string;
  md5Hash?: string;
}

/** Incremental MD5 + CRC32C over data that arrives in pieces (resumable chunks). */
export class ContentHasher {
  private readonly md5: Hash = createHash('md5');
  private readonly crc = new CRC32C();

  update(data: Buffer): this {
    this.md5.update(data);
    this.crc.update(data);
    return this;
  }

  /** Current values; the hasher stays usable for more data. */
  digest(): ContentHashes {
    return { md5Hash: this.md5.copy().digest('base64'), crc32c: this.crc.toString() };
  }
}

export function hashContent(data: Buffer): ContentHashes {
  return new ContentHasher().update(data).digest();
}

export function crc32cOf(chunks: Iterable<Buffer>): string {
  const crc = new CRC32C();
  for (const chunk of chunks) crc.update(chunk);
  return crc.toString();
}

/** Parses `X-Goog-Hash: crc32c=AAAAAA==,md5=...` (either part may be missing). */
export function parseGoogHash(header: string | string[] | undefined): ProvidedHashes {
  const provided: ProvidedHashes = {};
  const values = Array.isArray(header) ? header : header ? [header] : [];
  for (const pair of values.flatMap((value) => value.split(','))) {
    const separator = pair.indexOf('=');
    if (separator < 0) continue;
    const kind = pair.slice(0, separator).trim().toLowerCase();
    const value = pair.slice(separator + 1).trim();
    if (kind === 'crc32c') provided.crc32c = value;
    else if (kind === 'md5') provided.md5Hash = value;
  }
  return provided;
}

/** Formats the `X-Goog-Hash` response header the client validates downloads against. */
export function formatGoogHash(hashes: { crc32c: string; md5Hash?: string }): string {
  return hashes.md5Hash ? `crc32c=${hashes.crc32c},md5=${hashes.md5Hash}` : `crc32c=${hashes.crc32c}`;
}

/** Rejects an upload whose client-computed hashes differ from the received bytes (400, as the service). */
export function verifyProvidedHashes(provided: ProvidedHashes, actual: ContentHashes): void {
  if (provided.md5Hash !== undefined && provided.md5Hash !== actual.md5Hash) {
    throw hashMismatch('MD5', provided.md5Hash, actual.md5Hash);
  }
  if (provided.crc32c !== undefined && provided.crc32c !== actual.crc32c) {
    throw hashMismatch('CRC32C', provided.crc32c, actual.crc32c);
  }
}
