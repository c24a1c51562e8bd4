import { cpSync, existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { isolatedEnv } from '../cli-run.js';
import { useTestDomains } from '../rig/test-domains.js';

const project = fileURLToPath(new URL('../..', import.meta.url));
const { version } = JSON.parse(readFileSync(path.join(project, 'package.json'), 'utf8')) as {
  version: string;
};
const domains = useTestDomains();

describe('the packed package, installed into a clean prefix', () => {
  let prefix: string;
  let bin: string;
  const env = { ...isolatedEnv(), PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1' };
  const installed = (args: readonly string[], extra: Record<string, string> = {}) =>
    execa(bin, args, { env: { ...env, ...extra }, extendEnv: false, reject: false, stdin: 'ignore' });

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-package-'));
    // npm pack runs prepack, which builds dist/ (bundle and man page) from the sources: in a copy,
    // so the dist/ that other test files run at the same time is never rebuilt under them.
    const copy = path.join(dir, 'source');
    const skipped = new Set(
      ['node_modules', 'dist', 'build', '.git', '.cache'].map((f) => path.join(project, f)),
    );
    cpSync(project, copy, { recursive: true, filter: (file) => !skipped.has(path.resolve(file)) });
    symlinkSync(path.join(project, 'node_modules'), path.join(copy, 'node_modules'));
    const packed = await execa('npm', ['pack', '--json', '--pack-destination', dir], { cwd: copy });
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    if (info === undefined) throw new Error(`npm pack printed no package: ${packed.stdout}`);
    const files = info.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['dist/unifi-backup.js', 'dist/unifi-backup.1', 'LICENSE']));
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
    prefix = path.join(dir, 'prefix');
    // Everything is bundled: the package has no dependencies, so the install needs no registry.
    await execa(
      'npm',
      [
        'install',
        '--global',
        '--prefix',
        prefix,
        '--offline',
        '--no-audit',
        '--no-fund',
        path.join(dir, info.filename),
      ],
      { cwd: dir },
    );
    bin = path.join(prefix, 'bin', 'unifi-backup');
  });

  it('runs: --version is the package version, --help lists the verbs', async () => {
    expect((await installed(['--version'])).stdout).toBe(version);
    const help = await installed(['--help']);
    expect(help.exitCode).toBe(0);
    for (const verb of [
      'backup',
      'files',
      'run',
      'restore',
      'verify',
      'sync',
      'notify',
      'generate',
      'config',
      'completion',
    ])
      expect(help.stdout).toMatch(new RegExp(`^  ${verb}\\b`, 'm'));
  });

  it('installs the man page, and it renders', async () => {
    const page = path.join(prefix, 'share', 'man', 'man1', 'unifi-backup.1');
    expect(existsSync(page)).toBe(true);
    const man = await execa('man', ['-l', page], {
      env: { MANWIDTH: '100', MAN_KEEP_FORMATTING: '' },
      reject: false,
    });
    if (man.exitCode === 0) {
      expect(man.stdout).toContain('unifi-backup backup incr [options] <domain>');
      expect(man.stdout).toContain('EXIT STATUS');
    } else expect(readFileSync(page, 'utf8')).toMatch(/^\.TH UNIFI\\-BACKUP 1 /);
  });

  it('prints a config example that passes config check, and rejects a bad file with exit 2', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-config-'));
    const good = path.join(dir, 'good.yaml');
    writeFileSync(good, (await installed(['config', 'example'])).stdout);
    expect((await installed(['config', 'check', '--config', good])).stdout).toBe(`${good}: ok`);
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'max-incr: 0\nlock-dir: relative\n');
    const checked = await installed(['config', 'check', '--config', bad]);
    expect(checked.exitCode).toBe(2);
    expect(checked.stderr).toContain('max-incr: at least 1');
    expect(checked.stderr).toContain('lock-dir: an absolute path');
  });

  it('completes verbs, levels and the host’s domain names, and shows a real domain’s chain', async () => {
    const domain = await domains.create({ disks: 1, writer: false });
    const script = path.join(mkdtempSync(path.join(os.tmpdir(), 'ub-completion-')), 'unifi-backup.bash');
    const completion = await installed(['completion', 'bash']);
    expect(completion.exitCode).toBe(0);
    writeFileSync(script, completion.stdout);
    const complete = async (...words: string[]) =>
      (
        await execa('bash', [
          '--norc',
          '-c',
          'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _unifi_backup; printf "%s\\n" "${COMPREPLY[@]}"',
          'bash',
          script,
          'unifi-backup',
          ...words,
        ])
      ).stdout.split('\n');
    expect(await complete('backup', '')).toEqual(['incr', 'diff', 'full', 'enable', 'disable', 'showchain']);
    expect(await complete('run', '')).toEqual(['incr', 'diff', 'full']);
    expect(await complete('backup', 'showchain', '')).toContain(domain.name);

    const chain = await installed(['backup', 'showchain', domain.name]);
    expect(chain.stderr).toBe('');
    expect(chain.exitCode).toBe(0);
    expect(chain.stdout.split('\n')[0]).toBe(`${domain.name} (running)`);
    expect(chain.stdout).toContain(domain.disks[0]?.path ?? '?');
  });
});
