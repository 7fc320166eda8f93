import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import { readFileSync } from 'node:fs';

/** Which lib may import which (scripts/module-graph.json): one rule per lib, nothing past an index. */
const MODULE_GRAPH = Object.fromEntries(
  Object.entries(
    JSON.parse(readFileSync(new URL('./scripts/module-graph.json', import.meta.url), 'utf8')),
  ).filter(([key]) => !key.startsWith('$')),
);
const boundaries = Object.entries(MODULE_GRAPH).map(([lib, allowed]) => ({
  files: [`libs/${lib}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: Object.keys(MODULE_GRAPH)
              .filter((other) => other !== lib && !allowed.includes(other))
              .map((other) => `@chatbox/${other}`),
            message: `${lib} may import only ${allowed.join(', ') || 'no other lib'} (scripts/module-graph.json).`,
          },
          {
            group: ['@chatbox/*/*'],
            message: "Import a lib through its index ('@chatbox/<name>'), not its files.",
          },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'coverage/**',
      'node_modules/**',
      '.tools/**',
      'data/**',
      'test-artifacts/**',
      'apps/chatbox/public/**',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Read configuration through AppConfig (libs/common/src/config).',
        },
      ],
    },
  },
  ...boundaries,
  {
    // The entry point and the config loader read the environment; tests set it up.
    files: [
      'libs/common/src/config/**/*.ts',
      'apps/chatbox/src/main.ts',
      'test/**/*.ts',
      'scripts/**/*.ts',
      '**/*.spec.ts',
    ],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['test/**/*.ts', '**/*.spec.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
    languageOptions: {
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        __dirname: 'readonly',
        console: 'readonly',
        performance: 'readonly',
        fetch: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        TextDecoder: 'readonly',
        global: 'readonly',
      },
    },
  },
);
