/** `super-spine/filesystem`: the on-disk backend, without any cloud SDK. */
export * from './contract';
export { FileSystemStorage, type FileSystemStorageOptions } from '../backends/filesystem';
export { FileSystemStateStore } from '../backends/filesystem-store';
