/** `super-spine/gcs`: state in Cloud Storage; loads `@google-cloud/storage`. */
export * from './contract';
export {
  GcsStorage,
  GcsStateStore,
  type GcsStorageOptions,
  type GcsStateStoreOptions,
  type GcsStoreCounters,
  type RetryOptions,
} from '../backends/gcs';
