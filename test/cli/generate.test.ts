import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateCommand } from '../../src/cli/commands/generate.js';
import type { GenerateDependencies } from '../../src/cli/commands/generate.js';
import { UsageError } from '../../src/errors.js';
import type { Runner } from '../../src/host/runner.js';
import { fromConfig } from '../../src/profiles/config.js';
import type { ConfigObject } from '../../src/profiles/config.js';
import { compileSchemas, compileTimeoutMs, schemaProblems, sharedSchemaPath } from '../profiles/schema.js';

const example = ['-i', 'Mon..Fri 8,12,16,20:00', '-d', 'Mon..Fri 21:00', '-f', 'Sat 20:00'];
const noSystemdAnalyze: Runner = () => Promise.reject(new Error('cannot run systemd-analyze: ENOENT'));

async function generate(args: string[], dependencies: GenerateDependencies = {}) {
  let stdout = '';
  let stderr = '';
  const command = generateCommand({
    runner: noSystemdAnalyze,
    resolveSource: (domain) => `/var/lib/libvirt/images/${domain}`,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    ...dependencies,
  }).exitOverride();
  await command.parseAsync(args, { from: 'user' });
  return { stdout, stderr };
}

function temporaryDir(): string {
  return mkdtempSync(join(tmpdir(), 'unifi-generate-'));
}

beforeAll(compileSchemas, compileTimeoutMs);

describe('unifi-backup generate', () => {
  it("turns the original generator's example into equivalent, schema-valid profiles", async () => {
    const { stdout } = await generate([
      ...example,
      'MY-VM-NAME',
      '--repository',
      '/srv/restic',
      '--password-file',
      '/etc/unifi-backup/restic.password',
      '--source',
      '/storage/kvm/instances/MY-VM-NAME',
      '--notify-config',
      '/etc/unifi-backup/notify.yaml',
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
    expect(set.profiles['MY-VM-NAME-incr']?.backup.schedule).toBe('Mon..Fri 8,12,16,20:00');
    expect(set.profiles['MY-VM-NAME-diff']?.backup.schedule).toBe('Mon..Fri 21:00');
    expect(set.profiles['MY-VM-NAME-full']?.backup.schedule).toBe('Sat 20:00');
    expect(set.profiles['MY-VM-NAME-full']?.backup['run-before']).toEqual([
      'unifi-backup backup full MY-VM-NAME',
    ]);
    expect(set.profiles['MY-VM-NAME-incr']?.backup['run-after']?.[0]).toMatch(
      /^unifi-backup notify send --config \/etc\/unifi-backup\/notify.yaml --alias smtp --title /,
    );
    expect(set.profiles['MY-VM-NAME-incr']?.retention).toMatchObject({
      'keep-hourly': 1,
      'keep-last': 3,
      'keep-daily': 14,
      'keep-weekly': 12,
      'keep-monthly': 6,
      'keep-yearly': 1,
    });
  });

  it("asks the injected lookup for the domain's folder when --source is absent", async () => {
    const { stdout } = await generate(['-i', 'daily', 'vm1'], {
      resolveSource: (domain) => Promise.resolve(`/storage/${domain}`),
    });
    const set = fromConfig(parseYaml(stdout) as ConfigObject, 'stdout');
    expect(set.profiles['vm1-incr']?.backup.source).toEqual(['/storage/vm1']);
  });

  it('adds a second domain to a commented file, keeping the comments and the first domain', async () => {
    const file = join(temporaryDir(), 'profiles.yaml');
    writeFileSync(file, '# my resticprofile setup\nversion: "1"\n');
    await generate([...example, 'MY-VM-NAME', '--output', file, '--source', '/vm/{domain}']);
    await generate(['-i', 'hourly', "o'brien vm", '--output', file, '--source', '/vm/{domain}']);
    const { stdout } = await generate([
      '-i',
      'hourly',
      "o'brien vm",
      '--output',
      file,
      '--source',
      '/vm/{domain}',
    ]);
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
    expect(set.groups['all-incr']).toEqual(['MY-VM-NAME-incr', "o'brien vm-incr"]);
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
    [['-i', 'daily', '--keep-daily', 'many', 'vm'], /--keep-daily needs a whole number/],
    [['-i', 'daily', '--format', 'xml', 'vm'], /--format must be yaml, toml or json/],
    [['-i', 'daily', '--config-version', '3', 'vm'], /--config-version must be 1 or 2/],
    [['-i', 'daily', '--source', '/vm', 'a', 'b'], /same folder for 2 domains; put \{domain\} in it/],
    [['-i', 'daily', 'all'], /cannot be a domain name/],
    [['--systemd', '/tmp/x', 'vm'], /at least one schedule/],
    [['-i', 'daily', '--randomized-delay', '60', 'vm'], /applies to systemd units/],
  ])('rejects %j with the reason', async (args, reason) => {
    const run = generate(args);
    await expect(run).rejects.toBeInstanceOf(UsageError);
    await expect(run).rejects.toThrow(reason);
  });

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
    expect(readdirSync(unitDir).sort()).toEqual([
      'unifi-backup-my\\x20vm-incr.service',
      'unifi-backup-my\\x20vm-incr.timer',
    ]);
    expect(stdout).toContain('  systemctl daemon-reload\n');
    expect(stdout).toContain(`  systemctl enable --now 'unifi-backup-my\\x20vm-incr.timer'\n`);
  });
});
