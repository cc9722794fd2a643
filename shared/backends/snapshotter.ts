import { decode } from '../codec';
import { InvalidArgumentError, NetworkNotFoundError, SnapshotNotFoundError } from '../errors';
import { validateNetworkId, validateSnapshotId } from '../ids';
import type { GroupState, NetworkState, SnapshotInfo } from '../model';
import { newSnapshotId } from '../snapshot-id';
import { assembleGroupState, publicNetworkState, readGroupState } from './group-records';
import type { WriteLocks } from './materializer';
import {
  DEFAULT_CHANGE_TOLERANCE_MS,
  encodeNetworkStateChunks,
  SNAPSHOT_READ_AHEAD,
  type SaveSnapshotOptions,
  type SnapshotIfChangedOptions,
} from './snapshot-stream';
import type { SnapshotWrite, StateStore } from './state-store';

/**
 * Snapshots of a network: immutable copies of its whole state, what the snapshot function,
 * `shared/snapshots.ts` and `saveSnapshot`/`loadSnapshot` work with. Network and snapshot ids are
 * validated first (`InvalidIdError`); a network that does not exist or was deleted is
 * `NetworkNotFoundError`, a snapshot id nothing is stored under `SnapshotNotFoundError`.
 */
export interface Snapshotter {
  /**
   * Writes a snapshot of one consistent state of the network (writes to it wait, or on PostgreSQL
   * the read is one REPEATABLE READ state). With `options.snapshotId`, at most once per id: a
   * second call reports the existing snapshot with `created: false` and writes nothing.
   */
  writeSnapshot(networkId: string, label?: string, options?: SaveSnapshotOptions): Promise<SnapshotWrite>;
  /**
   * `writeSnapshot` only when the network changed since its newest snapshot: when it was last
   * written (`lastChanged`) after that snapshot's `createdAt` less `changeToleranceMs`. `null`
   * when unchanged.
   */
  snapshotIfChanged(
    networkId: string,
    label?: string,
    options?: SnapshotIfChangedOptions,
  ): Promise<SnapshotWrite | null>;
  /** When the network's state (not its snapshots) was last written, by the store's clock, from metadata; `null` for a missing or deleted network. */
  lastChanged(networkId: string): Promise<Date | null>;
  /** Deletes all but the newest `keep` snapshots, oldest first; returns the ids deleted (one deleted meanwhile by someone else is left out). */
  pruneSnapshots(networkId: string, keep: number): Promise<string[]>;
  /** The network state a snapshot holds, contacts without blend bookkeeping. */
  loadSnapshot(networkId: string, snapshotId: string): Promise<NetworkState>;
  /** The network's snapshots, newest first (ties by id, descending); `[]` when it has none or does not exist. */
  listSnapshots(networkId: string): Promise<SnapshotInfo[]>;
  /** Deletes one snapshot. */
  deleteSnapshot(networkId: string, snapshotId: string): Promise<void>;
}

export interface StoreSnapshotterOptions {
  /** Shared with the storage's Materializer: a snapshot excludes writes to its network in this process. */
  locks: WriteLocks;
  /** Resolves once the store is ready; throws `StorageClosedError` once it is closed. */
  open(operation: string): Promise<void>;
  /** Groups read ahead of the one being written into the snapshot (default `SNAPSHOT_READ_AHEAD`). */
  readAhead?: number;
}

/** The `Snapshotter` over a `StateStore`: bodies are encoded one group at a time straight into the store. */
export class StoreSnapshotter implements Snapshotter {
  constructor(
    private readonly store: StateStore,
    private readonly options: StoreSnapshotterOptions,
  ) {}

  /** Memory holds about a group of the network, never all of it. */
  async writeSnapshot(networkId: string, label?: string, options: SaveSnapshotOptions = {}): Promise<SnapshotWrite> {
    validateNetworkId(networkId);
    if (label !== undefined && typeof label !== 'string')
      throw new InvalidArgumentError('snapshot label must be a string');
    const requestedId = snapshotIdOption(options);
    await this.options.open('saveSnapshot');
    // Exclusive, so the snapshot is one consistent state of the network.
    return this.store.atomically({ kind: 'consistent-read', networkId }, () =>
      this.options.locks.networks.write(networkId, async () => {
        const record = await this.store.getNetwork(networkId);
        if (!record || record.deleted) throw new NetworkNotFoundError(networkId);
        if (requestedId !== undefined) {
          const existing = await this.store.getSnapshotInfo(networkId, requestedId);
          if (existing) return { created: false, info: existing };
        }
        // Taken before reading: a write that lands after this time counts as newer than the snapshot.
        const info: SnapshotInfo = {
          id: requestedId ?? newSnapshotId(),
          networkId,
          createdAt: new Date(),
          ...(label !== undefined && { label }),
        };
        return this.store.putSnapshotStream(
          networkId,
          info,
          encodeNetworkStateChunks(record, this.readGroupsInOrder(networkId)),
        );
      }),
    );
  }

  async snapshotIfChanged(
    networkId: string,
    label?: string,
    options: SnapshotIfChangedOptions = {},
  ): Promise<SnapshotWrite | null> {
    const tolerance = options.changeToleranceMs ?? DEFAULT_CHANGE_TOLERANCE_MS;
    if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) {
      throw new InvalidArgumentError(
        `changeToleranceMs must be a number of milliseconds, 0 or more, not ${JSON.stringify(tolerance)}`,
      );
    }
    const changed = await this.lastChanged(networkId);
    if (changed === null) throw new NetworkNotFoundError(networkId);
    const [newest] = await this.listSnapshots(networkId);
    if (newest && changed.getTime() <= newest.createdAt.getTime() - tolerance) return null;
    return this.writeSnapshot(networkId, label, options);
  }

  async lastChanged(networkId: string): Promise<Date | null> {
    validateNetworkId(networkId);
    await this.options.open('lastChanged');
    const [record, changed] = await Promise.all([this.store.getNetwork(networkId), this.store.lastChanged(networkId)]);
    return record && !record.deleted ? changed : null;
  }

  async pruneSnapshots(networkId: string, keep: number): Promise<string[]> {
    validateNetworkId(networkId);
    if (!Number.isSafeInteger(keep) || keep < 0)
      throw new InvalidArgumentError(
        `keep must be a whole number of snapshots, 0 or more, not ${JSON.stringify(keep)}`,
      );
    await this.options.open('pruneSnapshots');
    const doomed = (await this.listSnapshots(networkId)).slice(keep).reverse();
    const deleted: string[] = [];
    // A snapshot another pruner deleted first is not reported twice.
    for (const info of doomed) if (await this.store.deleteSnapshot(networkId, info.id)) deleted.push(info.id);
    return deleted;
  }

  async loadSnapshot(networkId: string, snapshotId: string): Promise<NetworkState> {
    validateNetworkId(networkId);
    validateSnapshotId(snapshotId);
    await this.options.open('loadSnapshot');
    const payload = await this.store.getSnapshot(networkId, snapshotId);
    if (payload === null) throw new SnapshotNotFoundError(networkId, snapshotId);
    return publicNetworkState(decode<NetworkState>(payload));
  }

  async listSnapshots(networkId: string): Promise<SnapshotInfo[]> {
    validateNetworkId(networkId);
    await this.options.open('listSnapshots');
    const infos = await this.store.listSnapshots(networkId);
    return infos.sort(
      (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
    );
  }

  async deleteSnapshot(networkId: string, snapshotId: string): Promise<void> {
    validateNetworkId(networkId);
    validateSnapshotId(snapshotId);
    await this.options.open('deleteSnapshot');
    if (!(await this.store.deleteSnapshot(networkId, snapshotId)))
      throw new SnapshotNotFoundError(networkId, snapshotId);
  }

  /**
   * The network's groups as `loadNetworkState` orders them, handed over one at a time while the
   * next `SNAPSHOT_READ_AHEAD` are being read: reads of a remote store overlap, memory stays at
   * a few groups.
   */
  private async *readGroupsInOrder(networkId: string): AsyncGenerator<[string, GroupState]> {
    const ids = (await this.store.listGroupIds(networkId)).sort();
    const bulk = this.store.bulk;
    if (bulk) {
      // A page of groups per request instead of two requests per group; memory holds a page.
      for (let start = 0; start < ids.length; start += SNAPSHOT_BULK_PAGE) {
        const page = ids.slice(start, start + SNAPSHOT_BULK_PAGE);
        const stored = await bulk.readGroups(networkId, page);
        for (const id of page) {
          const record = stored.get(id)?.record;
          if (record) yield [id, assembleGroupState(record, stored.get(id)!.contacts)];
        }
      }
      return;
    }
    const reading: Array<Promise<GroupState | null>> = [];
    const readAhead = this.options.readAhead ?? SNAPSHOT_READ_AHEAD;
    let started = 0;
    try {
      for (let i = 0; i < ids.length; i++) {
        // Group i and the ones after it, up to readAhead.
        while (started < ids.length && started <= i + readAhead)
          reading.push(readGroupState(this.store, networkId, ids[started++]!));
        const state = await reading.shift()!;
        if (state) yield [ids[i]!, state];
      }
    } finally {
      // Abandoned early (the snapshot existed, the upload failed): reads ahead must not fail unobserved.
      for (const pending of reading) pending.catch(() => undefined);
    }
  }
}

/** Groups a bulk store reads per request while a snapshot is written. */
const SNAPSHOT_BULK_PAGE = 250;

function snapshotIdOption(options: SaveSnapshotOptions): string | undefined {
  if (options === null || typeof options !== 'object')
    throw new InvalidArgumentError('snapshot options must be an object');
  return options.snapshotId === undefined ? undefined : validateSnapshotId(options.snapshotId);
}
