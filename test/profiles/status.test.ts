import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { lastProfileBackup } from '../../src/profiles/status.js';

function statusFile(content: unknown): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ub-status-')), 'profiles.status.json');
  writeFileSync(file, JSON.stringify(content));
  return file;
}

describe("resticprofile's status file", () => {
  const run = {
    success: false,
    time: '2026-12-02T03:00:05Z',
    error: 'exit status 1',
    stderr: '',
    duration: 4,
  };

  it('gives the last backup of the profile, and nothing for a profile or file it does not have', () => {
    const file = statusFile({ profiles: { 'vm-incr': { backup: run }, 'vm-full': {} } });
    expect(lastProfileBackup(file, 'vm-incr')).toEqual({
      success: false,
      time: '2026-12-02T03:00:05Z',
      error: 'exit status 1',
    });
    expect(lastProfileBackup(file, 'vm-full')).toBeUndefined();
    expect(lastProfileBackup(file, 'vm-diff')).toBeUndefined();
    expect(lastProfileBackup(path.join(path.dirname(file), 'none.json'), 'vm-incr')).toBeUndefined();
  });

  it('refuses one it cannot read as such, naming the file and the problem in words', () => {
    const file = statusFile({ profiles: { 'vm-incr': { backup: { ...run, success: 'yes' } } } });
    const read = () => lastProfileBackup(file, 'vm-incr');
    expect(read).toThrow(UserError);
    expect(read).toThrow(
      `the resticprofile status file ${file} is not one this version of unifi-backup wrote ` +
        '(profiles.vm-incr.backup.success: Invalid input: expected boolean, received string).',
    );
  });
});
