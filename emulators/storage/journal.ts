import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomically } from './atomic-file';
import { isBlobId, isNotFound } from './blob-store';
import { CoalescingWriter } from './coalescing-writer';
import type { BucketRecord, ObjectEntry, ObjectVersion } from './model';
import { isBucketName } from '../../shared/bucket-name';
import type { StorageState } from './state';

/**
 * Makes state changes durable. The in-memory journal does nothing; the data-directory journal
 * writes one JSON file per bucket, per object name (every generation of it) and per upload
 * session, each atomically, so a restarted emulator finds what it acknowledged.
 */
export interface StateJournal {
  /** Writes the bucket's current record, or removes it once the bucket is gone. */
  saveBucket(bucket: string): Promise<void>;
  /** Writes every generation stored for bucket/name, or removes the file once none is left. */
  saveObject(bucket: string, name: string): Promise<void>;
  saveUpload(id: string, record: unknown): Promise<void>;
  removeUpload(id: string): Promise<void>;
  /** Resolves when every write asked for so far is done. */
  idle(): Promise<void>;
}

export const memoryJournal: StateJournal = {
  saveBucket: async () => undefined,
  saveObject: async () => undefined,
  saveUpload: async () => undefined,
  removeUpload: async () => undefined,
  idle: async () => undefined,
};

interface ObjectFile {
  bucket: string;
  name: string;
  entry: ObjectEntry;
}

export class DataDirJournal implements StateJournal {
  private readonly writer = new CoalescingWriter();
  private readonly dirs: { buckets: string; objects: string; uploads: string; tmp: string };

  constructor(
    dataDir: string,
    private readonly state: StorageState,
  ) {
    this.dirs = {
      buckets: path.join(dataDir, 'buckets'),
      objects: path.join(dataDir, 'objects'),
      uploads: path.join(dataDir, 'uploads'),
      tmp: path.join(dataDir, 'tmp'),
    };
  }

  async init(): Promise<void> {
    await Promise.all(Object.values(this.dirs).map((dir) => fs.mkdir(dir, { recursive: true })));
  }

  saveBucket(bucket: string): Promise<void> {
    return this.writer.write(`b:${bucket}`, async () => {
      const record = this.state.bucketRecordOf(bucket);
      const file = this.bucketFile(bucket);
      if (record) {
        await writeFileAtomically(file, JSON.stringify(record), this.dirs.tmp);
      } else {
        await fs.rm(file, { force: true });
        await fs.rm(this.bucketObjectsDir(bucket), { recursive: true, force: true });
      }
    });
  }

  saveObject(bucket: string, name: string): Promise<void> {
    return this.writer.write(`o:${bucket}/${name}`, async () => {
      const entry = this.state.entryOf(bucket, name);
      const file = this.objectFile(bucket, name);
      if (entry) {
        await fs.mkdir(path.dirname(file), { recursive: true });
        const content: ObjectFile = { bucket, name, entry };
        await writeFileAtomically(file, JSON.stringify(content), this.dirs.tmp);
      } else {
        await fs.rm(file, { force: true });
      }
    });
  }

  saveUpload(id: string, record: unknown): Promise<void> {
    return this.writer.write(`u:${id}`, () =>
      writeFileAtomically(this.uploadFile(id), JSON.stringify(record), this.dirs.tmp),
    );
  }

  removeUpload(id: string): Promise<void> {
    return this.writer.write(`u:${id}`, () => fs.rm(this.uploadFile(id), { force: true }));
  }

  idle(): Promise<void> {
    return this.writer.idle();
  }

  /** Reads buckets and objects back into `state`; returns the saved upload sessions. */
  async load(): Promise<unknown[]> {
    await fs.rm(this.dirs.tmp, { recursive: true, force: true });
    await fs.mkdir(this.dirs.tmp, { recursive: true });

    for (const file of await jsonFiles(this.dirs.buckets)) {
      const record = (await readJson(path.join(this.dirs.buckets, file))) as BucketRecord | undefined;
      if (record && isBucketName(record.name)) this.state.restoreBucket(record);
    }
    for (const bucketDir of await fs.readdir(this.dirs.objects)) {
      if (!this.state.hasBucket(bucketDir)) {
        // Left behind by a bucket deletion that raced an object write.
        await fs.rm(path.join(this.dirs.objects, bucketDir), { recursive: true, force: true });
        continue;
      }
      const dir = path.join(this.dirs.objects, bucketDir);
      for (const file of await jsonFiles(dir)) {
        const content = (await readJson(path.join(dir, file))) as ObjectFile | undefined;
        if (content && content.bucket === bucketDir && isValidEntry(content.entry)) {
          this.state.restoreEntry(content.bucket, content.name, content.entry);
        }
      }
    }
    const uploads: unknown[] = [];
    for (const file of await jsonFiles(this.dirs.uploads)) {
      const record = await readJson(path.join(this.dirs.uploads, file));
      if (record !== undefined) uploads.push(record);
    }
    return uploads;
  }

  private bucketFile(bucket: string): string {
    return path.join(this.dirs.buckets, `${safeBucketName(bucket)}.json`);
  }

  private bucketObjectsDir(bucket: string): string {
    return path.join(this.dirs.objects, safeBucketName(bucket));
  }

  /** Object names may hold any character (`/`, `..`, ...): the file is named by their hash instead. */
  private objectFile(bucket: string, name: string): string {
    const digest = createHash('sha256').update(name, 'utf8').digest('hex');
    return path.join(this.bucketObjectsDir(bucket), `${digest}.json`);
  }

  private uploadFile(id: string): string {
    if (!isBlobId(id)) throw new Error(`unsafe upload id: ${JSON.stringify(id)}`);
    return path.join(this.dirs.uploads, `${id}.json`);
  }
}

function safeBucketName(bucket: string): string {
  if (!isBucketName(bucket)) throw new Error(`unsafe bucket name: ${JSON.stringify(bucket)}`);
  return bucket;
}

async function jsonFiles(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).filter((file) => file.endsWith('.json'));
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

/** A file that cannot be parsed was never acknowledged whole (writes are atomic), so it is skipped. */
async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function isValidEntry(entry: ObjectEntry | undefined): entry is ObjectEntry {
  if (!entry || !Array.isArray(entry.noncurrent)) return false;
  const versions: ObjectVersion[] = [...entry.noncurrent, ...(entry.live ? [entry.live] : [])];
  return versions.every((version) => isBlobId(version.blobId) && Number.isSafeInteger(version.generation));
}
