/**
 * What every backend entry re-exports: the `NetworkStorage` contract, its typed errors and the
 * values content is made of. None of it loads a cloud SDK, so each entry costs only its backend.
 */
export * from '../model';
export * from '../errors';
export { encode, decode, clone, deepEqual, type EncodeOptions } from '../codec';
export * from '../mergeable';
export { DocumentStorage, emptyGroupState, type DocumentStorageOptions } from '../backends/document-storage';
export type { StateStore, NetworkRecord, GroupRecord } from '../backends/state-store';
