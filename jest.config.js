/**
 * Three projects: unit (specs beside the code), integration (real FerretDB, real sockets),
 * browser (Debian Chromium through playwright-core). `make test` runs all of them.
 */
/** ESM-only dependencies that Jest must compile to CommonJS (see test/support/jest-transformer.js). */
const ESM_PACKAGES = [
  '@nestjs',
  'file-type',
  'eventsource-parser',
  'strtok3',
  'token-types',
  'peek-readable',
  '@tokenizer',
  '@borewit',
  'uint8array-extras',
  'nestjs-pino',
];

const moduleNameMapper = {
  '^@chatbox/([a-z-]+)$': '<rootDir>/libs/$1/src',
  '^@chatbox/([a-z-]+)/(.*)$': '<rootDir>/libs/$1/src/$2',
};

const common = {
  transform: { '^.+\\.(ts|js|mjs)$': '<rootDir>/test/support/jest-transformer.js' },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_PACKAGES.join('|')})/)`],
  moduleNameMapper,
  testEnvironment: 'node',
};

module.exports = {
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/integration-timeout.ts'],
    },
    {
      ...common,
      displayName: 'browser',
      testMatch: ['<rootDir>/test/browser/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/browser-timeout.ts'],
    },
  ],
};
