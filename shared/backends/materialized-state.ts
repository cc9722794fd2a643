/**
 * The parts of the materialized state, as interfaces: what the functions, the snapshot job and
 * the runtime depend on, never a concrete storage class.
 */
import type { NetworkStorage } from '../model';
import type { Materializer } from './materializer';
import type { Snapshotter } from './snapshotter';

export type { ContactWriteEntry, Materializer, NetworkSaveOutcome } from './materializer';
export type { Snapshotter } from './snapshotter';
export type { StateReader } from './state-reader';

/** The materialized state as the functions' runtime holds it: the contract, the writes events apply, and the snapshots. */
export type MaterializedState = NetworkStorage & Materializer & Snapshotter;

/** What a snapshot run needs: the snapshots, and which networks there are. */
export type SnapshotRunState = Snapshotter & Pick<NetworkStorage, 'listNetworks' | 'exists'>;
