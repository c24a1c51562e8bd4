import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastRun } from '../../src/cli/commands/schedule.js';
import { programRunner } from '../../src/host/runner.js';
import { appendRun } from '../../src/ops/run-record.js';
import { toConfig } from '../../src/profiles/config.js';
import { profileSchedules, timerSchedule, unescapeUnitName } from '../../src/profiles/installed.js';
import { buildProfileSet } from '../../src/profiles/model.js';
import { buildSystemdUnits } from '../../src/profiles/systemd.js';
import { originalExample } from './example.js';

describe('installed schedules', () => {
  it('finds the domains and levels of generated version 1 and 2 profiles, skipping foreign ones', () => {
    for (const version of ['1', '2'] as const) {
      const config = toConfig(buildProfileSet(originalExample, ['my $vm', 'b'], version), version);
      const foreign = { backup: { tag: ['x'], schedule: 'daily' } };
      const withForeign = version === '1' ? { ...config, nas: foreign } : config;
      const found = profileSchedules(withForeign, 'p.yaml');
      expect(found.map((s) => [s.domain, s.level, s.schedules])).toEqual([
        ['my $vm', 'incr', ['Mon..Fri 8,12,16,20:00']],
        ['my $vm', 'diff', ['Mon..Fri 21:00']],
        ['my $vm', 'full', ['Sat 20:00']],
        ['b', 'incr', ['Mon..Fri 8,12,16,20:00']],
        ['b', 'diff', ['Mon..Fri 21:00']],
        ['b', 'full', ['Sat 20:00']],
      ]);
      // diff and full inherit the status file from incr; $$ is resticprofile's literal dollar.
      expect(found[1]?.statusFile).toBe('/var/lib/unifi-backup/resticprofile/my%20%24vm.status.json');
    }
  });

  it('reads the domain and level back from the timers generate writes', () => {
    const odd = 'it\'s "50%" vm/ł';
    const units = buildSystemdUnits({ schedules: { full: 'Sat 20:00' }, program: 'x', programOptions: [] }, [
      odd,
    ]);
    const timer = units.find((unit) => unit.name.endsWith('.timer'));
    expect(unescapeUnitName('a\\x20b\\xc5\\x82')).toBe('a bł');
    expect(timerSchedule(timer?.name ?? '', timer?.text ?? '', 'f')).toMatchObject({
      domain: odd,
      level: 'full',
      schedules: ['Sat 20:00'],
      from: 'systemd',
    });
    expect(timerSchedule('other.timer', '', 'f')).toBeUndefined();
  });

  it("takes the last run and its result from resticprofile's status file, and refuses a corrupt one", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ub-status-'));
    const statusFile = join(dir, 'status.json');
    const entry = {
      domain: 'a',
      level: 'incr',
      schedules: ['daily'],
      from: 'resticprofile',
      name: 'a-incr',
      file: 'p.yaml',
      statusFile,
    } as const;
    expect(await lastRun(entry, programRunner, join(dir, 'state'))).toBeUndefined();
    const run = {
      success: false,
      time: '2026-12-01T20:00:03Z',
      error: 'exit status 1',
      stderr: '',
      duration: 3,
    };
    writeFileSync(statusFile, JSON.stringify({ profiles: { 'a-incr': { backup: run } } }));
    expect(await lastRun(entry, programRunner, join(dir, 'state'))).toEqual({
      time: '2026-12-01T20:00:03Z',
      result: 'failed: exit status 1',
    });
    writeFileSync(statusFile, '{"profiles": {"a-incr": {"backup": {"success": "yes"}}}}');
    await expect(lastRun(entry, programRunner, join(dir, 'state'))).rejects.toThrow(
      /resticprofile status file .* is not one/,
    );
  });

  it("takes a timer's last run from the run records, and a profile's backup record when resticprofile wrote no status", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ub-records-'));
    const stateDir = join(dir, 'state');
    const timer = {
      domain: 'a',
      level: 'incr',
      schedules: ['daily'],
      from: 'systemd',
      name: 'unifi-backup-incr-a.timer',
      file: 'u.timer',
    } as const;
    const profile = { ...timer, from: 'resticprofile', name: 'a-incr', file: 'p.yaml' } as const;
    expect(await lastRun(profile, programRunner, stateDir)).toBeUndefined();
    const times = { start: '2026-12-01T20:00:00.000Z', end: '2026-12-01T20:00:09.000Z' };
    await appendRun(stateDir, 'a', { verb: 'backup', level: 'incr', ...times, result: 'ok' });
    await appendRun(stateDir, 'a', { verb: 'run', level: 'full', ...times, result: 'ok' });
    await appendRun(stateDir, 'a', {
      verb: 'run',
      level: 'incr',
      ...times,
      result: 'failed',
      error: 'disk full',
    });
    expect(await lastRun(timer, programRunner, stateDir)).toEqual({
      time: '2026-12-01T20:00:09.000Z',
      result: 'failed: disk full',
    });
    expect(await lastRun(profile, programRunner, stateDir)).toEqual({
      time: '2026-12-01T20:00:09.000Z',
      result: 'ok',
    });
  });
});
