// ESLint for the TypeScript service, its tests, scripts, benchmarks and the browser playground.
// Type-aware: the project service gives every file the tsconfig nearest to it (the root one for
// src/, test/ and scripts/; bench/tsconfig.json; src/playground/tsconfig.json with DOM types), so
// the playground is linted with the same rules against its own compiler settings.
// Unused exports are knip's job (knip.json): import-x's no-unused-modules works only with the
// legacy configuration format, which ESLint 10 no longer reads.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', '.tools/', '.venv/', 'test-artifacts/', 'training/', 'models/']),
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    plugins: { 'import-x': importX },
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    settings: {
      // import-x parses a dependency only when it knows the parser for its extension.
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({
        project: ['tsconfig.json', 'bench/tsconfig.json', 'src/playground/tsconfig.json'],
        noWarnOnMultipleProjects: true,
      })],
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test registers a test or suite and runs it itself; the returned promise is not the caller's.
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      // An async signature is the contract here, not a promise of an await: fastify's async plugins and
      // handlers, and test fakes of async interfaces.
      '@typescript-eslint/require-await': 'off',
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    // Tests and benchmark reports read JSON bodies and result files (typed `any` by fastify's inject and
    // JSON.parse) and assert on them or print them; typing every field there would repeat the schemas.
    // The service and scripts keep these rules: no `any` crosses a module there.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // The config itself is plain JavaScript, outside every tsconfig.
    files: ['**/*.js'],
    extends: [js.configs.recommended],
  },
);
