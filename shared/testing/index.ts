export {
  runNetworkStorageConformance,
  type ConformanceSetup,
  type ConformanceFixture,
  type ConformanceRunner,
} from './conformance';
export { runStateStoreTests, type StateStoreSetup, type StateStoreFixture } from './state-store-tests';
export { eventually } from './eventually';
