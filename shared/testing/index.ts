export { runNetworkStorageConformance, type ConformanceSetup, type ConformanceFixture, type ConformanceRunner } from './conformance';
export { eventually } from './eventually';
