import { describe, expect, it } from 'vitest';
import { isSeedInvocation, translateSeedArgs } from '../../src/cli/seed.js';

describe('seed-compatible invocation', () => {
  it('recognises the original form only', () => {
    expect(isSeedInvocation(['-a', 'backup', '-m', 'incr', 'vm'])).toBe(true);
    expect(isSeedInvocation(['-q', '-a', 'backup', '-m', 'incr', 'vm'])).toBe(true);
    expect(isSeedInvocation(['backup', 'incr', 'vm'])).toBe(false);
    expect(isSeedInvocation(['-V'])).toBe(false);
  });

  it('maps every flag to its subcommand form', () => {
    expect(translateSeedArgs(['-a', 'backup', '-m', 'incr', '-q', '-p', '-d', '-v', 'my vm'])).toEqual([
      'backup',
      'incr',
      '--quiesce',
      '--print-files',
      '--debug',
      '--verbose',
      '--',
      'my vm',
    ]);
    expect(translateSeedArgs(['-a', 'backup', '-m', 'full', '-s', '/state', 'vm'])).toEqual([
      'backup',
      'full',
      '--memory-state',
      '/state',
      '--',
      'vm',
    ]);
    expect(translateSeedArgs(['-a', 'sync', '-m', 'diff', '-b', '/mnt/replica', 'vm'])).toEqual([
      'sync',
      'diff',
      '--backup-dir',
      '/mnt/replica',
      '--',
      'vm',
    ]);
  });

  it("keeps the original's maintenance save: the whole chain committed into the base", () => {
    expect(translateSeedArgs(['-a', 'maintenance', '-m', 'save', 'vm'])).toEqual([
      'maintenance',
      'save',
      '--consolidate',
      '--',
      'vm',
    ]);
    expect(translateSeedArgs(['-a', 'maintenance', '-m', 'drop', 'vm'])).toEqual([
      'maintenance',
      'drop',
      '--',
      'vm',
    ]);
  });

  it('keeps a domain whose name looks like a flag a domain', () => {
    expect(translateSeedArgs(['-a', 'backup', '-m', 'incr', '--', '-odd'])).toEqual([
      'backup',
      'incr',
      '--',
      '-odd',
    ]);
  });

  it('rejects what the original would not accept, with the usage', () => {
    expect(() => translateSeedArgs(['-a', 'explode', '-m', 'x', 'vm'])).toThrow(
      /-a must be one of backup, sync, maintenance/,
    );
    expect(() => translateSeedArgs(['-a', 'backup', 'vm'])).toThrow(/needs -m METHOD/);
    expect(() => translateSeedArgs(['-a', 'backup', '-m', 'incr'])).toThrow(/exactly one domain/);
    expect(() => translateSeedArgs(['-a', 'backup', '-m', 'incr', '-x', 'vm'])).toThrow(
      /Usage: unifi-backup -a ACTION/,
    );
  });
});
