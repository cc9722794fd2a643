/** `super-spine/memory`: the in-process backend, without any cloud SDK. */
export * from './contract';
export { MemoryStorage } from '../backends/memory';
export { MemoryStateStore } from '../backends/memory-store';
