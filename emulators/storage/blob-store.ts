import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomically } from './atomic-file';

/** Object bytes, stored under ids the emulator makes; metadata refers to them by id. */
export interface BlobStore {
  /** Stores bytes under a new id; resolves once they are in place. */
  put(data: Buffer): Promise<string>;
  /** Bytes [start, end) of a blob; rejects with BlobMissingError once it was removed. */
  read(blobId: string, start: number, end: number): Promise<Buffer>;
  /** Forgets blobs no stored version refers to any more. */
  remove(blobIds: readonly string[]): Promise<void>;
  /** Every stored blob id (to sweep ones a crash left unreferenced). */
  list(): Promise<string[]>;
  /** Staging for a resumable upload; `resume` reopens what an earlier run left. */
  staging(uploadId: string, resume?: { size: number }): Promise<StagedUpload>;
}

/** The bytes of an upload in progress. */
export interface StagedUpload {
  readonly size: number;
  append(data: Buffer): Promise<void>;
  /** Every staged byte, in order (to re-hash after a restart). */
  chunks(): AsyncIterable<Buffer>;
  /** Turns the staged bytes into a blob and returns its id. */
  commit(): Promise<string>;
  discard(): Promise<void>;
}

export class BlobMissingError extends Error {
  constructor(readonly blobId: string) {
    super(`blob ${blobId} is gone`);
    this.name = 'BlobMissingError';
  }
}

const BLOB_ID = /^[0-9a-f-]{36}$/;

export function isBlobId(value: unknown): value is string {
  return typeof value === 'string' && BLOB_ID.test(value);
}

export class MemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<string, Buffer>();

  async put(data: Buffer): Promise<string> {
    const id = randomUUID();
    this.blobs.set(id, data);
    return id;
  }

  async read(blobId: string, start: number, end: number): Promise<Buffer> {
    const blob = this.blobs.get(blobId);
    if (!blob) throw new BlobMissingError(blobId);
    return blob.subarray(start, end);
  }

  async remove(blobIds: readonly string[]): Promise<void> {
    for (const id of blobIds) this.blobs.delete(id);
  }

  async list(): Promise<string[]> {
    return [...this.blobs.keys()];
  }

  async staging(): Promise<StagedUpload> {
    const parts: Buffer[] = [];
    let size = 0;
    return {
      get size() {
        return size;
      },
      append: async (data) => {
        parts.push(data);
        size += data.length;
      },
      chunks: async function* () {
        yield* parts;
      },
      commit: () => {
        const data = Buffer.concat(parts, size);
        parts.length = 0; // a finished session is kept for replies; its bytes now live in the blob
        return this.put(data);
      },
      discard: async () => {
        parts.length = 0;
        size = 0;
      },
    };
  }
}

/**
 * Blobs as files `<dir>/blobs/<id>`, staged uploads as `<dir>/uploads/<id>.part`. Files appear
 * whole (temp file + rename), so a restart never sees half a blob.
 */
export class DiskBlobStore implements BlobStore {
  private readonly blobDir: string;
  private readonly uploadDir: string;
  private readonly tmpDir: string;

  constructor(dataDir: string) {
    this.blobDir = path.join(dataDir, 'blobs');
    this.uploadDir = path.join(dataDir, 'uploads');
    this.tmpDir = path.join(dataDir, 'tmp');
  }

  async init(): Promise<void> {
    await Promise.all([this.blobDir, this.uploadDir, this.tmpDir].map((dir) => fs.mkdir(dir, { recursive: true })));
  }

  async put(data: Buffer): Promise<string> {
    const id = randomUUID();
    await writeFileAtomically(this.blobPath(id), data, this.tmpDir);
    return id;
  }

  async read(blobId: string, start: number, end: number): Promise<Buffer> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.blobPath(blobId), 'r');
    } catch (error) {
      if (isNotFound(error)) throw new BlobMissingError(blobId);
      throw error;
    }
    try {
      const buffer = Buffer.allocUnsafe(Math.max(0, end - start));
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, start + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buffer.subarray(0, filled);
    } finally {
      await handle.close();
    }
  }

  async remove(blobIds: readonly string[]): Promise<void> {
    await Promise.all(blobIds.map((id) => fs.rm(this.blobPath(id), { force: true })));
  }

  async list(): Promise<string[]> {
    return (await fs.readdir(this.blobDir)).filter(isBlobId);
  }

  async staging(uploadId: string, resume?: { size: number }): Promise<StagedUpload> {
    const partPath = path.join(this.uploadDir, `${assertSafeId(uploadId)}.part`);
    let size = 0;
    if (resume) {
      // Bytes past the recorded size belong to a chunk that was never acknowledged.
      await fs.truncate(partPath, resume.size).catch(async (error: unknown) => {
        if (!isNotFound(error)) throw error;
        await fs.writeFile(partPath, Buffer.alloc(0));
      });
      size = (await fs.stat(partPath)).size;
    } else {
      await fs.writeFile(partPath, Buffer.alloc(0));
    }
    return {
      get size() {
        return size;
      },
      append: async (data) => {
        await fs.appendFile(partPath, data);
        size += data.length;
      },
      chunks: async function* () {
        if (size === 0) return;
        const handle = await fs.open(partPath, 'r');
        try {
          for await (const chunk of handle.createReadStream({ start: 0, end: size - 1, autoClose: false })) {
            yield chunk as Buffer;
          }
        } finally {
          await handle.close();
        }
      },
      commit: async () => {
        const id = randomUUID();
        await fs.rename(partPath, this.blobPath(id));
        return id;
      },
      discard: () => fs.rm(partPath, { force: true }),
    };
  }

  private blobPath(id: string): string {
    return path.join(this.blobDir, assertSafeId(id));
  }
}

/** Ids become file names: only the shape the emulator makes is accepted, so none can leave the directory. */
function assertSafeId(id: string): string {
  if (!isBlobId(id)) throw new Error(`unsafe blob or upload id: ${JSON.stringify(id)}`);
  return id;
}

export function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ENOENT';
}
