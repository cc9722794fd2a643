/** Tests by tier: test/unit (no servers), test/emulators and test/e2e (start their own servers). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }],
  },
  moduleNameMapper: {
    '^super-spine$': '<rootDir>/shared/index.ts',
    '^super-spine/testing$': '<rootDir>/shared/testing/index.ts',
    '^super-spine/emulators$': '<rootDir>/emulators/index.ts',
    '^super-spine/memory$': '<rootDir>/shared/entry/memory.ts',
    '^super-spine/filesystem$': '<rootDir>/shared/entry/filesystem.ts',
    '^super-spine/gcs$': '<rootDir>/shared/entry/gcs.ts',
    '^super-spine/postgres$': '<rootDir>/shared/entry/postgres.ts',
    '^super-spine/mesh$': '<rootDir>/shared/entry/mesh.ts',
    '^super-spine/remote$': '<rootDir>/shared/entry/remote.ts',
  },
  testTimeout: 60_000,
  // Servers started by tests are stopped in afterAll; this catches any that leak.
  forceExit: false,
};
