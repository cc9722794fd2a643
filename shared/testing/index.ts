export { runNetworkStorageConformance, type ConformanceSetup, type ConformanceFixture } from './conformance';
export { eventually } from './eventually';
