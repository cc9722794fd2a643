/** `super-spine/remote`: the mesh through a gateway with an API key; loads `ws`, no cloud SDK. */
export * from './contract';
export { RemoteStorage, type RemoteStorageOptions } from '../backends/remote';
