/** `super-spine/mesh`: the client of the event-driven mesh; loads the Pub/Sub and Cloud Storage SDKs. */
export * from './contract';
export {
  SpineStorage,
  type SpineStorageOptions,
  type SpineWriteOptions,
  type SpineStorageStats,
} from '../mesh/spine-storage';
export { DEFAULT_BUNDLING, type BundlingOptions } from '../mesh/write-bundler';
export { DeadLetterStore, DeadLetterNotFoundError, type DeadLetter } from '../mesh/dead-letters';
export { ContentMissingError, MAX_INLINE_CONTENT_BYTES } from '../mesh/content-store';
export {
  ArchiveReader,
  type ArchiveReaderOptions,
  type ArchiveObject,
  type ArchiveRange,
} from '../history/archive-reader';
