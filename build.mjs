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

// The tool is one CommonJS bundle (every `await import()` becomes a lazily run part of it), run by a
// small launcher through V8's code cache (src/cli/codecache.ts): a run of a verb it has seen before
// compiles almost nothing. CommonJS because node 20 gives ES modules no code cache.
rmSync('dist', { recursive: true, force: true });
await build({
  ...common,
  format: 'cjs',
  // A third less to read, hash and hand to V8 on every run; names stay (and the source map).
  minifyWhitespace: true,
  minifySyntax: true,
  // A vm.Script has no import(): node's own modules are require()d too.
  supported: { 'dynamic-import': false },
  banner: undefined,
  entryPoints: ['src/cli/bin.ts'],
  outfile: 'dist/unifi-backup.cjs',
});
await build({
  ...common,
  format: 'cjs',
  banner: undefined,
  entryPoints: ['src/cli/launcher.ts'],
  outfile: 'dist/unifi-backup.js',
  sourcemap: false,
});
// dist/*.js are CommonJS: the launcher starts as a script, not an ES module.
writeFileSync('dist/package.json', `${JSON.stringify({ type: 'commonjs' })}\n`);
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
