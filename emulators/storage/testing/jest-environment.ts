import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import * as storageClient from '@google-cloud/storage';
import { TestEnvironment } from 'jest-environment-node';
import { STORAGE_CLIENT_GLOBAL } from './client-module';

/**
 * A jest environment that gives tests the official Cloud Storage client loaded by Node itself.
 *
 * Why: jest runs test code in a vm that rejects `import()` unless node runs with
 * --experimental-vm-modules, and the client's HTTP layers (teeny-request, gaxios) load the
 * ESM-only node-fetch with `import()`, so every request fails inside jest. This module is
 * loaded outside the vm, and so is the client it hands over. Use it with the docblock
 *
 *   /** @jest-environment ./emulators/storage/testing/jest-environment.ts *\/
 *
 * and `storageClientModule()` from emulators/storage/testing. (The sandbox's process.env is a
 * copy: a client loaded this way reads the real environment, e.g. STORAGE_EMULATOR_HOST.)
 */
export default class StorageClientEnvironment extends TestEnvironment {
  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    (this.global as Record<string, unknown>)[STORAGE_CLIENT_GLOBAL] = storageClient;
  }
}
