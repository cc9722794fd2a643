// Lint for correctness only; layout is prettier's job (eslint-config-prettier turns the overlapping rules off).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', '.ci/out/', 'dashboard/public/vendor/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }],
      // Ids and settings are validated against control characters on purpose.
      'no-control-regex': 'off',
      // CommonJS package: a lazy require() keeps an SDK unloaded until its backend or command is chosen.
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/dist/*'], message: 'Import the sources, not the build output.' }] },
      ],
    },
  },
  {
    // Tests read untyped JSON bodies from the wire.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // shared/ is the library: it never reaches into the deployables or the tools built on it.
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/functions/*', '**/scheduler/*', '**/cli/*', '**/gateway/*', '**/dashboard/*'],
              message: 'shared/ must not import from functions/, scheduler/, cli/, gateway/ or dashboard/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
  prettier,
);
