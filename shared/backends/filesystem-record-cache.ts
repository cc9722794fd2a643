import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { copyValue } from '../codec';

/** What identifies one version of a file: an atomic replace makes a new inode and new times. */
interface FileVersion {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

interface CachedRecord {
  value: unknown;
  /** Set for records other processes may write (network records): the cached value is the file's while this matches. */
  version?: FileVersion;
}

/** Bytes of encoded records kept (by the length of their text). */
const CACHE_BYTES = 64 * 1024 * 1024;
/** Folders whose entry names are kept. */
const LISTED_FOLDERS = 20_000;

const records = new LRUCache<string, CachedRecord>({ maxSize: CACHE_BYTES });
const listings = new LRUCache<string, Set<string>>({ max: LISTED_FOLDERS });

/**
 * Decoded records by absolute file path, for the reads a contact write makes before it writes
 * (`cached` reads and the read in `updateContact`), so that a write to disk is not preceded by
 * reads of it; and the names in folders, so a file never written is known to be missing without
 * asking. Kept for the whole process, so every store over one folder in it sees the others'
 * writes. Group and contact files have one writing process (see `FileSystemStateStore`), so what
 * it wrote or read last is current; network records, which other processes update under their
 * lock file, are checked against the file's inode, size and times (one stat) before use.
 */
export class FileRecordCache {
  /**
   * A copy of the record of `file`, `null` when the file is missing, as this process wrote or
   * read it last; read with `read` (and kept) when it has no copy.
   */
  async get<T>(file: string, read: () => Promise<{ value: T | null; bytes: number }>): Promise<T | null> {
    const hit = records.get(file);
    if (hit !== undefined) return copyValue(hit.value) as T | null;
    if (!(await this.mayExist(file))) return null;
    const { value, bytes } = await read();
    this.keep(file, copyValue(value), bytes);
    return value;
  }

  /**
   * Keeps `value` as the content of `file` (`null`: the file is missing), as it is: the caller
   * hands over a value no one else holds. `bytes` is its encoded length.
   */
  keep(file: string, value: unknown, bytes: number): void {
    records.set(file, { value }, { size: Math.max(1, bytes) });
    const names = listings.get(path.dirname(file));
    if (value === null) names?.delete(path.basename(file));
    else names?.add(path.basename(file));
  }

  /**
   * Like `get`, for a file another process may replace: answered only while the file is the one
   * read (same inode, size and times); otherwise read afresh with `read` and kept with its version.
   */
  async getChecked<T>(file: string, read: () => Promise<{ value: T | null; bytes: number }>): Promise<T | null> {
    const version = await fileVersion(file);
    const hit = records.get(file);
    if (hit?.version && version && sameVersion(hit.version, version)) return copyValue(hit.value) as T;
    records.delete(file);
    if (!version) return null;
    // Replaced between the stat and the read: kept with the older version, so the next check reads again.
    const { value, bytes } = await read();
    records.set(file, { value: copyValue(value), version }, { size: Math.max(1, bytes) });
    return value;
  }

  /** Forgets what is known of `file` (a write of it failed, or another process may write it). */
  forget(file: string): void {
    records.delete(file);
    listings.delete(path.dirname(file));
  }

  /** Forgets every record in `dir` and below (a folder removed as a whole). */
  forgetUnder(dir: string): void {
    const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
    for (const key of [...records.keys()]) if (key.startsWith(prefix)) records.delete(key);
    for (const key of [...listings.keys()]) if (key === dir || key.startsWith(prefix)) listings.delete(key);
    listings.delete(path.dirname(dir));
  }

  /** False when the folder's listing (read once, then kept up to date) lacks the file. */
  private async mayExist(file: string): Promise<boolean> {
    const dir = path.dirname(file);
    let names = listings.get(dir);
    if (!names) {
      names = new Set(await listNames(dir));
      listings.set(dir, names);
    }
    return names.has(path.basename(file));
  }
}

async function listNames(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}

async function fileVersion(file: string): Promise<FileVersion | null> {
  try {
    const stat = await fs.stat(file, { bigint: true });
    return { ino: stat.ino, size: stat.size, mtimeNs: stat.mtimeNs, ctimeNs: stat.ctimeNs };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw error;
  }
}

function sameVersion(a: FileVersion, b: FileVersion): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}
