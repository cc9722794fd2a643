import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * Writes a file so that readers (and a restarted emulator) see either the old content or the
 * new, never a torn write: the bytes go to a temp file in `tmpDir` (same file system), which is
 * then renamed over the target.
 */
export async function writeFileAtomically(target: string, data: string | Buffer, tmpDir: string): Promise<void> {
  const temp = path.join(tmpDir, `${randomUUID()}.tmp`);
  try {
    await fs.writeFile(temp, data);
    await fs.rename(temp, target);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}
