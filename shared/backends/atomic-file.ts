import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface AtomicWriteOptions {
  /** fsync the file before it replaces the old one, so a power loss cannot leave it empty. */
  fsync: boolean;
}

/**
 * Replaces `file` with `data` so that readers see the old or the new content, never a part:
 * the data goes to a temp file in the same folder, which is then renamed over the target.
 * Temp names start with "." and so never collide with encoded keys.
 */
export async function writeFileAtomic(file: string, data: string, options: AtomicWriteOptions): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeTemp(temp, data, options);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeTemp(temp, data, options);
  }
  try {
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

async function writeTemp(temp: string, data: string, options: AtomicWriteOptions): Promise<void> {
  const handle = await fs.open(temp, 'w');
  try {
    await handle.writeFile(data, 'utf8');
    if (options.fsync) await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** The file's text, or `null` when it does not exist. */
export async function readFileIfExists(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR')
      return null;
    throw error;
  }
}

/** Entry names of a folder (hidden ones skipped), or none when it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).filter((name) => !name.startsWith('.'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR')
      return [];
    throw error;
  }
}

/**
 * Removes a folder tree so that it disappears at once: it is first renamed to a hidden trash
 * name (atomic), then deleted. A crash in between leaves only hidden trash behind.
 */
export async function removeTree(dir: string): Promise<void> {
  const trash = path.join(path.dirname(dir), `.trash-${randomBytes(6).toString('hex')}`);
  try {
    await fs.rename(dir, trash);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  await fs.rm(trash, { recursive: true, force: true });
}

/** Deletes the hidden trash and temp files that an interrupted removal or write left in `dir`. */
export async function sweepLeftovers(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  await Promise.all(
    names
      .filter((name) => name.startsWith('.trash-') || (name.startsWith('.') && name.endsWith('.tmp')))
      .map((name) => fs.rm(path.join(dir, name), { recursive: true, force: true })),
  );
}
