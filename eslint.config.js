// Lint: typescript-eslint's recommended rules, plus the checks that keep promises observed (an
// unhandled rejection stops Node) and the kit out of the daemon. Formatting is Prettier's.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'test/fixtures/', 'test/live-workloads/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['vitest.config.ts'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/kit/*'], message: 'the kit is for tests, benchmarks, demo and replay: the daemon never loads it' }] },
      ],
    },
  },
  {
    // The console's script runs in the browser, as a classic script (no build step).
    files: ['console/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(
        ['document', 'sessionStorage', 'fetch', 'Node', 'setInterval', 'clearInterval', 'URLSearchParams'].map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    // Tools and tests may use the kit.
    files: ['src/kit/**', 'src/commands/**', 'src/replay/**', 'test/**', 'bench/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  prettier,
);
