import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { buildProfileSet, fileListPath, repositoryProfileName } from '../../src/profiles/model.js';
import type { Profile } from '../../src/profiles/model.js';
import { shellQuote } from '../../src/profiles/shell.js';
import { originalExample } from './example.js';

/** The words a POSIX shell makes of a command line, with `program` defined to print its arguments. */
function shellWords(command: string, program: string): string[] {
  const script = `${program}() { for word in "$@"; do printf '%s\\0' "$word"; done; }\n${command}`;
  const output = execFileSync('/bin/sh', ['-c', script], {
    encoding: 'utf8',
    env: { ERROR_MESSAGE: 'restic exited with $(code) 1' },
  });
  return output.split('\0').slice(0, -1);
}

/** The first command of a hook list, as text. */
function hook(profile: Profile | undefined, key: string): string {
  const list = profile?.backup?.[key];
  return Array.isArray(list) && typeof list[0] === 'string' ? list[0] : '';
}

describe('buildProfileSet', () => {
  it('builds the original example offline: profiles that read exactly the list run-before writes', () => {
    const set = buildProfileSet(originalExample, ['MY-VM-NAME'], '1');
    expect(Object.keys(set.profiles)).toEqual(['MY-VM-NAME-incr', 'MY-VM-NAME-diff', 'MY-VM-NAME-full']);
    expect(set.groups).toEqual({
      'all-incr': { profiles: ['MY-VM-NAME-incr'] },
      'all-diff': { profiles: ['MY-VM-NAME-diff'] },
      'all-full': { profiles: ['MY-VM-NAME-full'] },
    });
    const incr = set.profiles['MY-VM-NAME-incr'];
    const list = '/var/lib/unifi-backup/lists/MY-VM-NAME.files';
    expect(incr).toMatchObject({
      repository: '/srv/restic',
      'password-file': '/etc/unifi-backup/restic.password',
      lock: '/run/unifi-backup/resticprofile-MY-VM-NAME.lock',
      'status-file': '/var/lib/unifi-backup/resticprofile/MY-VM-NAME.status.json',
      backup: {
        'files-from-verbatim': [list],
        tag: ['MY-VM-NAME', 'kvm', 'incr'],
        schedule: 'Mon..Fri 8,12,16,20:00',
        'schedule-permission': 'system',
        'schedule-priority': 'background',
        'schedule-log': '/var/log/unifi-backup/MY-VM-NAME-incr.log',
        'run-before': [`unifi-backup backup incr --files-to ${list} -- MY-VM-NAME`],
      },
      retention: {
        'after-backup': true,
        'keep-hourly': 1,
        'keep-last': 3,
        'keep-daily': 14,
        'keep-weekly': 12,
        'keep-monthly': 6,
        'keep-yearly': 1,
        tag: 'MY-VM-NAME,incr',
        'group-by': 'host,tags',
        path: false,
      },
    });
    // restic never gets a folder, so it cannot read an active layer or another domain's disks.
    expect(incr?.backup?.source).toBeUndefined();
    // A local repository needs no network.
    expect(incr?.backup?.['schedule-after-network-online']).toBeUndefined();
    for (const level of ['diff', 'full'] as const) {
      const profile = set.profiles[`MY-VM-NAME-${level}`];
      expect(profile?.inherit).toBe('MY-VM-NAME-incr');
      expect(profile?.backup?.tag).toEqual(['MY-VM-NAME', 'kvm', level]);
      expect(hook(profile, 'run-before')).toBe(
        `unifi-backup backup ${level} --files-to ${list} -- MY-VM-NAME`,
      );
      expect(profile?.retention?.tag).toBe(`MY-VM-NAME,${level}`);
    }
    expect(set.profiles['MY-VM-NAME-full']?.backup?.schedule).toBe('Sat 20:00');
  });

  it('gives unscheduled diff and full no profile, so they cannot inherit the incr schedule', () => {
    const set = buildProfileSet({ ...originalExample, schedules: { incr: 'daily' } }, ['a'], '1');
    expect(Object.keys(set.profiles)).toEqual(['a-incr']);
  });

  it('puts version 2 schedules on the level groups, so the domains of a host run one after another', () => {
    const set = buildProfileSet({ ...originalExample, repository: 'sftp:nas:/restic' }, ['a', 'b'], '2');
    expect(set.profiles['a-incr']?.backup?.schedule).toBeUndefined();
    expect(set.groups['all-incr']).toEqual({
      profiles: ['a-incr', 'b-incr'],
      schedules: {
        backup: {
          at: ['Mon..Fri 8,12,16,20:00'],
          permission: 'system',
          priority: 'background',
          'lock-wait': '4h',
          log: '/var/log/unifi-backup/all-incr.log',
          'after-network-online': true,
        },
      },
    });
  });

  it('adds prune and check once per repository, and initialize, status and metrics per domain', () => {
    const set = buildProfileSet(
      {
        ...originalExample,
        repository: 's3:host/bucket',
        initialize: true,
        prometheusDir: '/var/lib/node-exporter',
        pingUrl: 'https://hc-ping.com/KEY/{profile}',
        upkeep: { prune: 'Sun 03:00', check: 'Sun 05:00', checkSubset: '1/7' },
      },
      ['a b', 'c'],
      '1',
    );
    const upkeep = set.profiles[repositoryProfileName];
    expect(upkeep).toMatchObject({
      repository: 's3:host/bucket',
      prune: { schedule: 'Sun 03:00', 'schedule-after-network-online': true },
      check: { schedule: 'Sun 05:00', 'read-data-subset': '1/7' },
    });
    expect(set.groups['all-incr']?.profiles).toEqual(['a b-incr', 'c-incr']);
    const incr = set.profiles['a b-incr'];
    expect(incr).toMatchObject({
      initialize: true,
      'prometheus-save-to-file': '/var/lib/node-exporter/unifi-backup-a%20b.prom',
      backup: {
        'schedule-after-network-online': true,
        'send-after': { method: 'HEAD', url: 'https://hc-ping.com/KEY/a%20b-incr' },
        'send-after-fail': { method: 'POST', url: 'https://hc-ping.com/KEY/a%20b-incr/fail' },
      },
    });
  });

  it('escapes $ in paths resticprofile expands', () => {
    const set = buildProfileSet({ ...originalExample, passwordFile: '/etc/$pw' }, ['a$b'], '1');
    const incr = set.profiles['a$b-incr'];
    expect(incr?.['password-file']).toBe('/etc/$$pw');
    expect(incr?.backup?.['files-from-verbatim']).toEqual(['/var/lib/unifi-backup/lists/a%24b.files']);
  });

  it('quotes a domain named with spaces and quotes so the shell passes it as one word, after --', () => {
    const domain = `it's "my" vm; $(reboot) \`x\` --help`;
    const set = buildProfileSet({ ...originalExample, program: 'tool' }, [domain], '1');
    const diff = set.profiles[`${domain}-diff`];
    expect(shellWords(hook(diff, 'run-before'), 'tool')).toEqual([
      'backup',
      'diff',
      '--files-to',
      fileListPath('/var/lib/unifi-backup', domain),
      '--',
      domain,
    ]);
    expect(shellWords(hook(diff, 'run-after'), 'tool')).toEqual([
      'notify',
      'send',
      '--config',
      '/etc/unifi-backup/notify.yaml',
      '--alias',
      'smtp',
      '--title',
      `Backup diff of ${domain} succeeded`,
      '--msg',
      `resticprofile profile ${domain}-diff finished.`,
    ]);
    expect(shellWords(hook(diff, 'run-after-fail'), 'tool').slice(-2)).toEqual([
      '--msg',
      `resticprofile profile ${domain}-diff failed: restic exited with $(code) 1`,
    ]);
  });

  it('passes a non-default state folder, lock folder or connection on to every hook', () => {
    const set = buildProfileSet({ ...originalExample, programOptions: ['--state-dir', '/s'] }, ['a'], '1');
    expect(hook(set.profiles['a-incr'], 'run-before')).toMatch(/^unifi-backup --state-dir \/s backup incr /);
  });

  it('quotes only what needs quoting', () => {
    expect(shellQuote('MY-VM-NAME')).toBe('MY-VM-NAME');
    expect(shellQuote("a b'c")).toBe(`'a b'\\''c'`);
    expect(shellQuote('')).toBe(`''`);
  });

  it('keeps odd characters out of file names', () => {
    const set = buildProfileSet(originalExample, ['a:b c'], '1');
    expect(set.profiles['a:b c-incr']?.lock).toBe('/run/unifi-backup/resticprofile-a%3ab%20c.lock');
  });

  it.each(['all', '', 'x{{ .Env }}', 'a,b', 'vm*', 'vm[1]', 'a?'])('refuses the domain name %j', (domain) => {
    expect(() => buildProfileSet(originalExample, [domain], '1')).toThrow(UsageError);
  });
});
