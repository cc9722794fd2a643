import { createHash } from 'node:crypto';
import type { Storage } from '@google-cloud/storage';
import { CorruptDataError, SpineError } from '../errors';
import type { ContentReference } from '../events/types';

/** Content larger than this travels by reference (an event reaching a function is capped at 512 KB). */
export const MAX_INLINE_CONTENT_BYTES = 256 * 1024;

export class ContentMissingError extends SpineError {
  constructor(readonly reference: ContentReference) {
    super('NOT_FOUND', `referenced content ${reference.object} (${reference.size} bytes) is not in the bucket yet`);
  }
}

/**
 * Large payloads stored once by content hash: the same bytes always get the same object, so
 * a retried upload or a second writer is a no-op (`ifGenerationMatch: 0`).
 * @internal Used by SpineStorage and the functions; exported for the project's own tests.
 */
export class ContentStore {
  constructor(
    private readonly storage: Storage,
    readonly bucket: string,
    private readonly prefix = 'content/',
  ) {}

  async put(bytes: Buffer): Promise<ContentReference> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const object = `${this.prefix}${sha256}`;
    try {
      await this.storage
        .bucket(this.bucket)
        .file(object)
        .save(bytes, { resumable: false, contentType: 'application/json', preconditionOpts: { ifGenerationMatch: 0 } });
    } catch (error) {
      if ((error as { code?: number }).code !== 412) throw error;
    }
    return { object, sha256, size: bytes.length };
  }

  async get(reference: ContentReference): Promise<Buffer> {
    let bytes: Buffer;
    try {
      [bytes] = await this.storage.bucket(this.bucket).file(reference.object).download();
    } catch (error) {
      if ((error as { code?: number }).code === 404) throw new ContentMissingError(reference);
      throw error;
    }
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== reference.sha256)
      throw new CorruptDataError(`content ${reference.object} has hash ${actual}, expected ${reference.sha256}`);
    return bytes;
  }
}
