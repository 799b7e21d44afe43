/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // tsconfig sets isolatedModules, so ts-jest transpiles file by file; tsc --noEmit type-checks separately.
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
  },
  // Sources import with NodeNext's `.js` suffixes; map them to the `.ts` files.
  moduleNameMapper: {
    // The function imports the layer by its package name, as it does in Lambda (/opt/nodejs/node_modules).
    '^asherah-layer$': '<rootDir>/layer/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  // Child-process tests (memlock-limited runs) take seconds each.
  testTimeout: 120000,
};
