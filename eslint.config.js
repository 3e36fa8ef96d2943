import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', 'coverage/', 'dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^zod(/|$)',
              message: "Import `z` from src/zod.ts: zod's mini build with the English messages loaded (the classic build adds ~30 ms to each cold start).",
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/zod.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // The reference widget and console run in browsers, as they are: no build step, no bundler.
    files: ['widget/**/*.js', 'console/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'localStorage', 'fetch', 'WebSocket', 'CSS', 'FormData', 'URLSearchParams', 'URL', 'crypto', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'sessionStorage', 'atob', 'TextDecoder', 'Event', 'DataTransfer'].map((name) => [name, 'readonly']),
      ),
    },
  },
  {
    // Tests read loosely typed JSON answers; `any` there keeps assertions readable.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
