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
  },
  testTimeout: 60_000,
  // Servers started by tests are stopped in afterAll; this catches any that leak.
  forceExit: false,
};
