import { MemoryStorage } from '../backends/memory';
import { InvalidArgumentError } from '../errors';
import type { WriteOrigin } from '../events/types';
import { formatStamp } from '../hlc';
import { validateNetworkId } from '../ids';
import { silentLogger } from '../log';
import type { NetworkState, NetworkStorage, SnapshotInfo } from '../model';
import type { ArchiveReader } from './archive-reader';
import { NothingToRestoreError, RestorePointBeforeArchiveError, RestorePointInFutureError } from './errors';
import { replayEvent, type ContentLoader } from './replay';

export interface RestoreNetworkOptions {
  /** The instant to restore (a Date or an ISO 8601 time): events at or before it count, later ones not. */
  at: Date | string;
  /**
   * Restore into this new network and leave the live one alone; refused when it exists
   * (`RestoreTargetExistsError`). Without it the restore replaces the live network.
   */
  as?: string;
  /** How long to wait for the restore to be materialized (default the client's `flushTimeoutMs`). */
  timeoutMs?: number;
}

/** What a point-in-time restore did. */
export interface RestoreSummary {
  /** The network whose past was restored. */
  sourceNetworkId: string;
  /** The network the state was written to: `as`, or the source itself. */
  networkId: string;
  at: Date;
  /** The snapshot the restore started from; absent when it replayed the archive from its beginning. */
  snapshot?: { id: string; createdAt: Date };
  /** Archived events applied on top of the snapshot (after de-duplication). */
  eventsApplied: number;
  /** Groups in the restored state. */
  groups: number;
}

/** The state of a network at an instant, rebuilt in memory; nothing is written anywhere. */
export interface PointInTimeState {
  state: NetworkState;
  at: Date;
  snapshot?: SnapshotInfo;
  eventsApplied: number;
}

/** Writer id of the stamp a snapshot is applied with when a restore starts from it. */
const SNAPSHOT_WRITER = 'restore-snapshot';

/** `at` as a Date, checked: a bad value is an `InvalidArgumentError`, an instant after `now` a `RestorePointInFutureError`. */
export function resolveRestorePoint(at: unknown, now: Date = new Date()): Date {
  const date = at instanceof Date ? new Date(at.getTime()) : typeof at === 'string' ? new Date(at) : undefined;
  if (!date || Number.isNaN(date.getTime()))
    throw new InvalidArgumentError(
      `restoreNetwork: at must be a Date or an ISO 8601 time such as 2026-12-07T10:42:00Z, not ${JSON.stringify(at)}`,
    );
  if (date.getTime() > now.getTime()) throw new RestorePointInFutureError(date, now);
  return date;
}

/**
 * When the archive's first event happened: the earliest event time in the objects of its oldest
 * batch second (an event can be older than the batch holding it, so the name alone is not enough).
 * Undefined for an empty archive. An unreadable or corrupt object there throws, naming it.
 */
export async function archiveBeginsAt(archive: ArchiveReader): Promise<Date | undefined> {
  const first = await archive.begins();
  if (!first) return undefined;
  let earliest = Infinity;
  for (const object of await archive.listObjects({ from: first, to: first })) {
    for (const event of await archive.readObject(object.name)) earliest = Math.min(earliest, Date.parse(event.time));
  }
  return Number.isFinite(earliest) ? new Date(earliest) : first;
}

/**
 * The network as it was at `at`, rebuilt in memory: the newest snapshot taken at or before `at`
 * (applied as a whole-network save stamped at its `createdAt`), then every archived event of the
 * network whose time is after the snapshot's `createdAt` and at or before `at`, each once, in
 * archive order, applied by the materializer the functions use (`replayEvent`). Without such a
 * snapshot the archive is replayed from its beginning, which must be no later than `at`.
 *
 * Everything is read and applied before anything is returned: a corrupt or unreadable archive
 * object throws (`ArchiveCorruptError`, `ArchiveUnreadableError`, naming it) and nothing is written
 * by the caller. A network with no state at `at` is a `NothingToRestoreError`.
 */
export async function rebuildNetworkAt(
  archive: ArchiveReader,
  snapshots: Pick<NetworkStorage, 'listSnapshots' | 'loadSnapshot'>,
  loadContent: ContentLoader,
  networkId: string,
  atOption: Date | string,
): Promise<PointInTimeState> {
  validateNetworkId(networkId);
  const at = resolveRestorePoint(atOption);
  const snapshot = (await snapshots.listSnapshots(networkId)).find((info) => info.createdAt.getTime() <= at.getTime());
  if (!snapshot) {
    const begins = await archiveBeginsAt(archive);
    if (!begins || at.getTime() < begins.getTime()) throw new RestorePointBeforeArchiveError(networkId, at, begins);
  }
  const after = snapshot?.createdAt.getTime() ?? -Infinity;
  const events = (await archive.read({ networkId, to: at, ...(snapshot ? { from: snapshot.createdAt } : {}) })).filter(
    (event) => Date.parse(event.time) > after,
  );

  const memory = new MemoryStorage({ writerId: 'point-in-time-restore', logger: silentLogger });
  try {
    await memory.initialize();
    if (snapshot) {
      const base = await snapshots.loadSnapshot(networkId, snapshot.id);
      // Stamped at the snapshot's time: writes stamped before it are in it (or superseded by it), later ones apply on top.
      const origin: WriteOrigin = {
        stamp: formatStamp({ wallTime: snapshot.createdAt.getTime(), logical: 0, writerId: SNAPSHOT_WRITER }),
        writerId: SNAPSHOT_WRITER,
        seq: 1,
      };
      await memory.applyNetworkSave(networkId, base, origin);
    }
    let eventsApplied = 0;
    // Snapshot and flush requests are archived too; they change nothing.
    for (const event of events) if ((await replayEvent(memory, event, loadContent)).length > 0) eventsApplied++;
    const state = await memory.loadNetworkState(networkId);
    if (!state) throw new NothingToRestoreError(networkId, at);
    return { state, at, ...(snapshot ? { snapshot } : {}), eventsApplied };
  } finally {
    await memory.close();
  }
}
