import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' },
        {
          selector: "Property[key.name='shell'][value.value=true]",
          message: 'No shell: pass argument arrays.',
        },
      ],
    },
  },
  {
    // A function reads as a short list of named phases. Tests are exempt: a describe block holds
    // its cases.
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
    },
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
