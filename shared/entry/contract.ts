/**
 * What every backend entry re-exports: the `NetworkStorage` contract, its typed errors and the
 * values content is made of. None of it loads a cloud SDK, so each entry costs only its backend.
 */
export * from '../model';
export * from '../errors';
export { encode, decode, clone, deepEqual, type EncodeOptions } from '../codec';
export * from '../mergeable';
export {
  DocumentStorage,
  emptyGroupState,
  type DocumentStorageOptions,
  type DocumentStorageParts,
} from '../backends/document-storage';
export type {
  StateStore,
  NetworkRecord,
  GroupRecord,
  AtomicUnit,
  SnapshotWrite,
  BulkGroupStore,
  StoredGroup,
  GroupWrite,
} from '../backends/state-store';
export {
  StoreMaterializer,
  type Materializer,
  type ContactWriteEntry,
  type NetworkSaveOutcome,
  type StoreMaterializerOptions,
  type WriteLocks,
} from '../backends/materializer';
export { StoreSnapshotter, type Snapshotter, type StoreSnapshotterOptions } from '../backends/snapshotter';
export { StoreStateReader, type StateReader } from '../backends/state-reader';
export type { MaterializedState, SnapshotRunState } from '../backends/materialized-state';
export { SinceOutOfRangeError } from '../history/catch-up';
export type { HistoryEntry, HistoryOptions, HistoryPage, HistoryOutcome } from '../history/history';
export { ArchiveCorruptError, ArchiveUnreadableError } from '../history/errors';
export {
  NothingToRestoreError,
  PointInTimeRestoreStillApplyingError,
  RestorePointBeforeArchiveError,
  RestorePointInFutureError,
  RestoreTargetExistsError,
} from '../history/errors';
export type { RestoreNetworkOptions, RestoreSummary } from '../history/restore';
