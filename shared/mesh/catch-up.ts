import type { ArchiveReader } from '../history/archive-reader';

/**
 * Default time from a write's acceptance until it is surely in the archive. Locally the archiver
 * closes a batch after about a second (`cli/archiver.ts`); in the cloud the Cloud Storage
 * subscription writes a batch after its `max_duration`. Both get an allowance for pulling and
 * writing the object on a busy machine.
 */
export function defaultArchiveLagMs(onEmulator: boolean, maxDurationSeconds: number): number {
  return onEmulator ? 3_000 : maxDurationSeconds * 1000 + 15_000;
}

/** How long a catch-up subscription remembers the writes the archive delivered, to drop them on the live side. */
export const SEAM_MEMORY_MS = 60 * 60 * 1000;

/**
 * Waits until every event accepted before `liveFrom` (when the live subscription began) is in the
 * archive, so that reading the archive after this and taking the live subscription from its start
 * leaves no gap: a write materialized before `liveFrom` has its change announced before the live
 * subscription existed, so only the archive can hold it. Events are accepted before they are
 * materialized, so such a write was accepted before `liveFrom`; the archiver has it at most
 * `lagMs` later. While writes are flowing (`writesFlowing()`), it also waits (up to three more
 * lags) for an object whose batch began after `liveFrom`: the local archiver writes batches in
 * the order they closed and pulls in publication order, so once such an object exists every
 * earlier batch has been written, however far behind the archiver was.
 */
export async function waitForArchive(
  archive: ArchiveReader,
  liveFrom: number,
  lagMs: number,
  writesFlowing: () => boolean,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<{ archiveCaughtUp: boolean }> {
  const lagEnds = liveFrom + lagMs;
  while (Date.now() < lagEnds) await sleep(Math.min(200, lagEnds - Date.now()));
  if (!writesFlowing()) return { archiveCaughtUp: true };
  // A batch named for a second at or after liveFrom began after it.
  const firstSecondAfter = new Date(Math.ceil(liveFrom / 1000) * 1000);
  const deadline = lagEnds + 3 * lagMs;
  for (;;) {
    const objects = await archive.listObjects({ from: firstSecondAfter });
    if (objects.some((o) => o.batchStart.getTime() >= liveFrom)) return { archiveCaughtUp: true };
    if (Date.now() >= deadline) return { archiveCaughtUp: false };
    await sleep(200);
  }
}
