import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const restrictedSyntax = [
  { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' },
  {
    selector: "Property[key.name='shell'][value.value=true]",
    message: 'No shell: pass argument arrays.',
  },
];

export default tseslint.config(
  { ignores: ['dist/', 'build/', '.cache/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', '*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      'no-restricted-syntax': ['error', ...restrictedSyntax],
    },
  },
  {
    // A function reads as a short list of named phases. Tests are exempt: a describe block holds
    // its cases.
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
      'no-restricted-syntax': [
        'error',
        ...restrictedSyntax,
        {
          // A named import (`import { z }`) would keep all of zod/mini's exports in the bundle.
          selector: 'ImportDeclaration[source.value=/^(\\.\\/|(\\.\\.\\/)+)schema\\.js$/] > ImportSpecifier',
          message: "Use the namespace form: import * as z from './schema.js'.",
        },
      ],
      // All of zod is 700 kB loaded on every verb; zod/mini through src/schema.ts keeps 40 kB.
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'zod', message: "Import * as z from './schema.js' (zod/mini)." },
            { name: 'zod/mini', message: "Import * as z from './schema.js'." },
          ],
        },
      ],
    },
  },
  {
    files: ['src/schema.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // These two functions are templates (a bash script, a man page) written out as text:
    // their length is the length of the document, not of logic.
    files: ['src/cli/completion.ts', 'src/cli/manpage.ts'],
    rules: { 'max-lines-per-function': 'off' },
  },
  {
    files: ['*.js', '*.mjs', 'vitest.config.ts'],
    ...tseslint.configs.disableTypeChecked,
    rules: { ...tseslint.configs.disableTypeChecked.rules, 'no-restricted-syntax': 'off' },
  },
);
