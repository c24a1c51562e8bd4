import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import process from 'node:process';
import { readFileSync, writeFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  define: { __VERSION__: JSON.stringify(version) },
  // Bundled CommonJS dependencies call require(); give ESM output a real one.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/unifi-backup.js',
  banner: { js: '#!/usr/bin/env node\n' + common.banner.js },
});
// unifi-backup(1) comes from the CLI's own definitions; package.json "man" installs it.
writeFileSync(
  'dist/unifi-backup.1',
  execFileSync(process.execPath, ['dist/unifi-backup.js', 'manpage'], { encoding: 'utf8' }),
);
await build({ ...common, entryPoints: ['demo/demo.ts'], outfile: 'build/demo.js' });
