import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateCommand } from '../../../src/cli/commands/generate.js';
import type { GenerateDependencies } from '../../../src/cli/commands/generate.js';
import { UsageError } from '../../../src/errors.js';
import { programRunner } from '../../../src/host/runner.js';
import { fromConfig } from '../../../src/profiles/config.js';
import type { ConfigObject } from '../../../src/profiles/config.js';
import { compileSchemas, compileTimeoutMs, schemaProblems, sharedSchemaPath } from '../../profiles/schema.js';

const example = ['-i', 'Mon..Fri 8,12,16,20:00', '-d', 'Mon..Fri 21:00', '-f', 'Sat 20:00'];

async function generate(args: string[], dependencies: GenerateDependencies = {}, globals: string[] = []) {
  let stdout = '';
  let stderr = '';
  const generate = generateCommand({
    runner: programRunner,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    ...dependencies,
  }).exitOverride();
  // The global options live on the parent, as in the real program.
  const program = new Command('unifi-backup')
    .exitOverride()
    .option('--dry-run', '', false)
    .option('--state-dir <dir>', '', '/var/lib/unifi-backup')
    .option('--lock-dir <dir>', '', '/run/unifi-backup')
    .option('-c, --connect <uri>', '', 'qemu:///system')
    .addCommand(generate);
  await program.parseAsync([...globals, 'generate', ...args], { from: 'user' });
  return { stdout, stderr };
}

function temporaryDir(): string {
  return mkdtempSync(join(tmpdir(), 'unifi-generate-'));
}

beforeAll(compileSchemas, compileTimeoutMs);

const fixtures = temporaryDir();
const passwordFile = join(fixtures, 'restic.password');
const notifyFile = join(fixtures, 'notify.yaml');
writeFileSync(passwordFile, 'secret\n');
writeFileSync(notifyFile, 'aliases:\n  smtp:\n    url: generic+http://127.0.0.1:9/hook\n');

describe('unifi-backup generate', () => {
  it("turns the original generator's example into equivalent, schema-valid profiles, offline", async () => {
    const { stdout } = await generate([
      ...example,
      'MY-VM-NAME',
      '--repository',
      '/srv/restic',
      '--password-file',
      passwordFile,
      '--notify-config',
      notifyFile,
      '--notify-alias',
      'smtp',
    ]);
    const config = parseYaml(stdout) as ConfigObject;
    expect(schemaProblems(config)).toEqual([]);
    expect(schemaProblems(config, sharedSchemaPath)).toEqual([]);
    const set = fromConfig(config, 'stdout');
    expect(Object.keys(set.profiles)).toEqual(['MY-VM-NAME-incr', 'MY-VM-NAME-diff', 'MY-VM-NAME-full']);
    expect(set.profiles['MY-VM-NAME-diff']?.inherit).toBe('MY-VM-NAME-incr');
    expect(set.profiles['MY-VM-NAME-full']?.inherit).toBe('MY-VM-NAME-incr');
    expect(set.profiles['MY-VM-NAME-incr']?.backup?.schedule).toBe('Mon..Fri 8,12,16,20:00');
    expect(set.profiles['MY-VM-NAME-diff']?.backup?.schedule).toBe('Mon..Fri 21:00');
    expect(set.profiles['MY-VM-NAME-full']?.backup?.schedule).toBe('Sat 20:00');
    expect(set.profiles['MY-VM-NAME-full']?.backup?.['run-before']).toEqual([
      'unifi-backup backup full --files-to /var/lib/unifi-backup/lists/MY-VM-NAME.files -- MY-VM-NAME',
    ]);
    expect(set.profiles['MY-VM-NAME-incr']?.backup?.['run-after']).toEqual([
      expect.stringMatching(/^unifi-backup notify send --config \S+notify.yaml --alias smtp --title /),
    ]);
    expect(set.profiles['MY-VM-NAME-incr']?.retention).toMatchObject({
      'keep-hourly': 1,
      'keep-last': 3,
      'keep-daily': 14,
      'keep-weekly': 12,
      'keep-monthly': 6,
      'keep-yearly': 1,
    });
  });

  it('adds a second domain to a commented file, keeping the comments and the first domain', async () => {
    const file = join(temporaryDir(), 'profiles.yaml');
    writeFileSync(file, '# my resticprofile setup\nversion: "1"\n');
    await generate([...example, 'MY-VM-NAME', '--output', file]);
    await generate(['-i', 'hourly', "o'brien vm", '--output', file]);
    const { stdout } = await generate(['-i', 'hourly', "o'brien vm", '--output', file]);
    expect(stdout).toMatch(/^updated /);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# my resticprofile setup');
    expect(text.match(/^"?o'brien vm-incr"?:/gm)).toHaveLength(1);
    const set = fromConfig(parseYaml(text) as ConfigObject, file);
    expect(Object.keys(set.profiles)).toEqual([
      'MY-VM-NAME-incr',
      'MY-VM-NAME-diff',
      'MY-VM-NAME-full',
      "o'brien vm-incr",
    ]);
    expect(set.groups['all-incr']?.profiles).toEqual(['MY-VM-NAME-incr', "o'brien vm-incr"]);
    expect(schemaProblems(parseYaml(text))).toEqual([]);
  });

  it('writes TOML and JSON, by --format or by the file extension', async () => {
    const { stdout } = await generate([...example, 'vm', '--format', 'toml', '--config-version', '2']);
    const toml = parseToml(stdout) as ConfigObject;
    expect(toml.version).toBe('2');
    expect(Object.keys(fromConfig(toml, 'stdout').profiles)).toEqual(['vm-incr', 'vm-diff', 'vm-full']);
    const file = join(temporaryDir(), 'profiles.json');
    await generate([...example, 'vm', '--output', file]);
    expect(schemaProblems(JSON.parse(readFileSync(file, 'utf8')))).toEqual([]);
  });

  it.each([
    [['-i', 'Mon..Fri 8,12,16,25:00', 'vm'], /--incr "Mon..Fri 8,12,16,25:00" .*hour 25 .* out of range/],
    [['-f', 'Saturday 8pm', 'vm'], /--full "Saturday 8pm" .*"8pm"/],
    [['-d', 'Fri..Mon 21:00', 'vm'], /--diff .*runs backwards/],
    [['-i', 'daily', '--keep-daily', 'many', 'vm'], /--keep-daily must be a whole number/],
    [['-i', 'daily', '--format', 'xml', 'vm'], /--format must be yaml, toml or json/],
    [['-i', 'daily', '--config-version', '3', 'vm'], /--config-version must be 1 or 2/],
    [['-i', '*:0/5', 'vm'], /fires 5 min apart.*--force/],
    [['-i', '2001-01-01', 'vm'], /never elapses.*--force/],
    [['-i', 'daily', 'vm*'], /"\*" cannot be in a restic tag/],
    [['-i', 'daily', '--repository', 'x{{.Env.A}}', 'vm'], /--repository .*templates/],
    [
      ['-i', 'daily', '--password-file', '/nonexistent/pw', 'vm'],
      /--password-file \/nonexistent\/pw: ENOENT/,
    ],
    [['-i', 'daily', '--notify-alias', 'ops', 'vm'], /--notify-alias needs --notify-config/],
    [['-i', 'daily', '--healthchecks', 'ftp://x', 'vm'], /--healthchecks must be an http/],
    [['-i', 'daily', '--check-subset', 'half', 'vm'], /--check-subset must be like/],
    [
      ['-i', 'daily', '--systemd', '/tmp/x', '--repository', '/r', '--keep-daily', '3', 'vm'],
      /--repository, --keep-daily apply to resticprofile profiles/,
    ],
    [['-i', 'daily', 'all'], /cannot be a domain name/],
    [['--systemd', '/tmp/x', 'vm'], /at least one schedule/],
    [['-i', 'daily', '--randomized-delay', '60', 'vm'], /applies to systemd units/],
  ])('rejects %j with the reason', async (args, reason) => {
    const run = generate(args);
    await expect(run).rejects.toBeInstanceOf(UsageError);
    await expect(run).rejects.toThrow(reason);
  });

  it('checks the notify config and every alias when generating, not at the first run', async () => {
    await expect(generate(['-i', 'daily', '--notify-config', notifyFile, 'vm'])).rejects.toThrow(
      /needs --notify-alias NAME.*known: smtp/,
    );
    await expect(
      generate(['-i', 'daily', '--notify-config', notifyFile, '--notify-alias', 'pager', 'vm']),
    ).rejects.toThrow(/no alias pager; known aliases: smtp/);
    await expect(
      generate(['-i', 'daily', '--notify-config', '/nonexistent.yaml', '--notify-alias', 'x', 'vm']),
    ).rejects.toThrow(/no such file/);
  });

  it('re-running to change one schedule keeps the others, and --dry-run shows the change as a diff', async () => {
    const file = join(temporaryDir(), 'profiles.yaml');
    await generate([...example, 'MY-VM-NAME', '--output', file]);
    const before = readFileSync(file, 'utf8');
    const { stdout } = await generate(['-f', 'Sun 03:00', 'MY-VM-NAME', '--output', file], {}, ['--dry-run']);
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(stdout).toContain('-    schedule: Sat 20:00\n+    schedule: Sun 03:00\n');
    expect(stdout.match(/^[-+] /gm)).toHaveLength(2);
    expect(stdout).toContain('(dry run: nothing was written)');
    await generate(['-f', 'Sun 03:00', 'MY-VM-NAME', '--output', file]);
    const set = fromConfig(parseYaml(readFileSync(file, 'utf8')) as ConfigObject, file);
    expect(set.profiles['MY-VM-NAME-incr']?.backup?.schedule).toBe('Mon..Fri 8,12,16,20:00');
    expect(set.profiles['MY-VM-NAME-diff']?.backup?.schedule).toBe('Mon..Fri 21:00');
    expect(set.profiles['MY-VM-NAME-full']?.backup?.schedule).toBe('Sun 03:00');
  });

  it('passes a non-default state folder on to the hooks and lists', async () => {
    const { stdout } = await generate(['-i', 'daily', 'vm'], {}, ['--state-dir', '/srv/ub state']);
    const set = fromConfig(parseYaml(stdout) as ConfigObject, 'stdout');
    expect(set.profiles['vm-incr']?.backup?.['run-before']).toEqual([
      "unifi-backup --state-dir '/srv/ub state' backup incr --files-to '/srv/ub state/lists/vm.files' -- vm",
    ]);
  });

  it.each(['yaml', 'toml', 'json'])(
    'writes every option as %s that the published schema accepts',
    async (format) => {
      const { stdout } = await generate([
        ...example,
        'a b',
        'c',
        '--format',
        format,
        '--repository',
        'sftp:backup@nas:/restic',
        '--password-file',
        passwordFile,
        '--init',
        '--prune',
        'Sun 03:00',
        '--check',
        'Sun 05:00',
        '--healthchecks',
        'https://hc-ping.com/KEY/{profile}',
        '--prometheus-dir',
        '/var/lib/prometheus/node-exporter',
        '--notify-config',
        notifyFile,
        '--notify-alias',
        'smtp',
      ]);
      const config = (
        format === 'yaml' ? parseYaml(stdout) : format === 'toml' ? parseToml(stdout) : JSON.parse(stdout)
      ) as ConfigObject;
      expect(schemaProblems(config)).toEqual([]);
      expect(schemaProblems(config, sharedSchemaPath)).toEqual([]);
    },
  );

  it('writes systemd units to --systemd DIR', async () => {
    const dir = join(temporaryDir(), 'units');
    const { stdout } = await generate([
      ...example,
      'MY-VM-NAME',
      '--systemd',
      dir,
      '--randomized-delay',
      '600',
    ]);
    expect(readdirSync(dir).sort()).toEqual([
      'unifi-backup-MY-VM-NAME-diff.service',
      'unifi-backup-MY-VM-NAME-diff.timer',
      'unifi-backup-MY-VM-NAME-full.service',
      'unifi-backup-MY-VM-NAME-full.timer',
      'unifi-backup-MY-VM-NAME-incr.service',
      'unifi-backup-MY-VM-NAME-incr.timer',
    ]);
    expect(readFileSync(join(dir, 'unifi-backup-MY-VM-NAME-full.timer'), 'utf8')).toContain(
      'RandomizedDelaySec=600',
    );
    expect(stdout).toContain('systemctl daemon-reload');
  });

  it('--install writes to the systemd folder and prints the systemctl commands', async () => {
    const unitDir = temporaryDir();
    const { stdout } = await generate(['-i', 'hourly', 'my vm', '--install'], { unitDir });
    expect(stdout).not.toContain('flock');
    expect(readdirSync(unitDir).sort()).toEqual([
      'unifi-backup-my\\x20vm-incr.service',
      'unifi-backup-my\\x20vm-incr.timer',
    ]);
    expect(stdout).toContain('  systemctl daemon-reload\n');
    expect(stdout).toContain(`  systemctl enable --now 'unifi-backup-my\\x20vm-incr.timer'\n`);
  });
});
