import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { buildProfileSet } from '../../src/profiles/model.js';
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

describe('buildProfileSet', () => {
  it('builds the original example: incr, diff and full profiles inheriting from incr', () => {
    const set = buildProfileSet(originalExample, [
      { domain: 'MY-VM-NAME', source: '/storage/kvm/instances/MY-VM-NAME' },
    ]);
    expect(Object.keys(set.profiles)).toEqual(['MY-VM-NAME-incr', 'MY-VM-NAME-diff', 'MY-VM-NAME-full']);
    expect(set.groups).toEqual({
      'all-incr': ['MY-VM-NAME-incr'],
      'all-diff': ['MY-VM-NAME-diff'],
      'all-full': ['MY-VM-NAME-full'],
    });
    const incr = set.profiles['MY-VM-NAME-incr'];
    expect(incr).toMatchObject({
      repository: '/srv/restic',
      'password-file': '/etc/unifi-backup/restic.password',
      lock: '/run/unifi-backup/resticprofile-MY-VM-NAME.lock',
      backup: {
        source: ['/storage/kvm/instances/MY-VM-NAME'],
        tag: ['MY-VM-NAME', 'kvm', 'incr'],
        schedule: 'Mon..Fri 8,12,16,20:00',
        'schedule-log': '/var/log/unifi-backup/MY-VM-NAME-incr.log',
        'run-before': ['unifi-backup backup incr MY-VM-NAME'],
      },
      retention: {
        'after-backup': true,
        'keep-hourly': 1,
        'keep-last': 3,
        'keep-daily': 14,
        'keep-weekly': 12,
      },
    });
    expect(incr?.retention).toMatchObject({ 'keep-monthly': 6, 'keep-yearly': 1, tag: 'MY-VM-NAME,incr' });
    for (const level of ['diff', 'full'] as const) {
      const profile = set.profiles[`MY-VM-NAME-${level}`];
      expect(profile?.inherit).toBe('MY-VM-NAME-incr');
      expect(profile?.backup.tag).toEqual(['MY-VM-NAME', 'kvm', level]);
      expect(profile?.backup['run-before']).toEqual([`unifi-backup backup ${level} MY-VM-NAME`]);
      expect(profile?.retention.tag).toBe(`MY-VM-NAME,${level}`);
    }
    expect(set.profiles['MY-VM-NAME-full']?.backup.schedule).toBe('Sat 20:00');
  });

  it('gives unscheduled diff and full no profile, so they cannot inherit the incr schedule', () => {
    const set = buildProfileSet({ ...originalExample, schedules: { incr: 'daily' } }, [
      { domain: 'a', source: '/a' },
    ]);
    expect(Object.keys(set.profiles)).toEqual(['a-incr']);
  });

  it('quotes a domain named with spaces and quotes so the shell passes it as one word', () => {
    const domain = `it's "my" vm; $(reboot) \`x\``;
    const set = buildProfileSet({ ...originalExample, program: 'tool' }, [{ domain, source: '/vm' }]);
    const backup = set.profiles[`${domain}-diff`]?.backup;
    expect(shellWords(backup?.['run-before'][0] ?? '', 'tool')).toEqual(['backup', 'diff', domain]);
    expect(shellWords(backup?.['run-after']?.[0] ?? '', 'tool')).toEqual([
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
    expect(shellWords(backup?.['run-after-fail']?.[0] ?? '', 'tool').slice(-2)).toEqual([
      '--msg',
      `resticprofile profile ${domain}-diff failed: restic exited with $(code) 1`,
    ]);
  });

  it('quotes only what needs quoting', () => {
    expect(shellQuote('MY-VM-NAME')).toBe('MY-VM-NAME');
    expect(shellQuote("a b'c")).toBe(`'a b'\\''c'`);
    expect(shellQuote('')).toBe(`''`);
  });

  it('keeps commas out of restic tags and odd characters out of file names', () => {
    const set = buildProfileSet(originalExample, [{ domain: 'a,b c', source: '/vm' }]);
    const incr = set.profiles['a,b c-incr'];
    expect(incr?.backup.tag).toEqual(['a_b c', 'kvm', 'incr']);
    expect(incr?.lock).toBe('/run/unifi-backup/resticprofile-a%2cb%20c.lock');
  });

  it.each(['all', '', 'x{{ .Env }}'])('refuses the domain name %j', (domain) => {
    expect(() => buildProfileSet(originalExample, [{ domain, source: '/vm' }])).toThrow(UsageError);
  });
});
