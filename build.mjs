import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import process from 'node:process';

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

// Code splitting: every `await import()` becomes its own chunk, so start-up parses only the
// command definitions and commander, not zod, execa or the XML and YAML parsers.
rmSync('dist', { recursive: true, force: true });
await build({
  ...common,
  entryPoints: { 'unifi-backup': 'src/cli/bin.ts' },
  outdir: 'dist',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
});
const bin = 'dist/unifi-backup.js';
writeFileSync(bin, `#!/usr/bin/env node\n${readFileSync(bin, 'utf8')}`);
chmodSync(bin, 0o755);
// unifi-backup(1) comes from the CLI's own definitions; package.json "man" installs it.
writeFileSync(
  'dist/unifi-backup.1',
  execFileSync(process.execPath, ['dist/unifi-backup.js', 'manpage'], { encoding: 'utf8' }),
);
await build({ ...common, entryPoints: ['demo/demo.ts'], outfile: 'build/demo.js' });
await build({ ...common, entryPoints: ['bench/bench.ts'], outfile: 'build/bench.js' });
