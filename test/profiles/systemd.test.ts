import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildSystemdUnits,
  enableCommands,
  escapeUnitName,
  failureUnitName,
} from '../../src/profiles/systemd.js';
import type { SystemdSettings } from '../../src/profiles/systemd.js';

type Sections = Record<string, Record<string, string[]>>;

/** A unit file as systemd reads it: sections of keys, each key possibly repeated. */
function parseUnit(text: string): Sections {
  const sections: Sections = {};
  let current: Record<string, string[]> | undefined;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1] !== undefined) {
      current = sections[header[1]] = {};
      continue;
    }
    const eq = line.indexOf('=');
    if (current === undefined || eq < 0) throw new Error(`not a unit file line: ${line}`);
    (current[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
  }
  return sections;
}

/** ExecStart= words the way systemd splits them (quotes, C escapes, $$ and %%). */
function execArgv(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ') i++;
    if (i >= line.length) break;
    let word = '';
    const quoted = line[i] === '"';
    if (quoted) i++;
    while (i < line.length && (quoted ? line[i] !== '"' : line[i] !== ' ')) {
      const c = line[i] ?? '';
      const next = line[i + 1] ?? '';
      if (c === '\\') {
        if (next === 'n') word += '\n';
        else if (next === 't') word += '\t';
        else if (next === 'x') {
          word += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 2;
        } else word += next;
        i += 2;
      } else if ((c === '$' || c === '%') && next === c) {
        word += c;
        i += 2;
      } else if (c === '$' || c === '%') {
        throw new Error(`unescaped ${c} in ${line}`);
      } else {
        word += c;
        i++;
      }
    }
    if (quoted) i++;
    words.push(word);
  }
  return words;
}

const settings: SystemdSettings = {
  schedules: { incr: 'Mon..Fri 8,12,16,20:00', diff: 'Mon..Fri 21:00', full: 'Sat 20:00' },
  program: 'unifi-backup',
  programOptions: [],
  randomizedDelaySec: 300,
};
const oddName = `it's "50%" $HOME\\vm`;

describe('buildSystemdUnits', () => {
  it('refuses a domain with a comma, as profiles do: the scheduled run could not tag its snapshots', () => {
    expect(() => buildSystemdUnits(settings, ['a,b'])).toThrow(
      'domain "a,b": its name holds a comma, which restic tags cannot hold. Rename the domain (virsh domrename) to schedule it.',
    );
  });

  it('writes a service and a timer per level of the original example', () => {
    const units = buildSystemdUnits(settings, ['MY-VM-NAME']);
    expect(units.map((unit) => unit.name)).toEqual([
      'unifi-backup-MY-VM-NAME-incr.service',
      'unifi-backup-MY-VM-NAME-incr.timer',
      'unifi-backup-MY-VM-NAME-diff.service',
      'unifi-backup-MY-VM-NAME-diff.timer',
      'unifi-backup-MY-VM-NAME-full.service',
      'unifi-backup-MY-VM-NAME-full.timer',
    ]);
    const timer = parseUnit(units[1]?.text ?? '');
    expect(timer.Timer).toEqual({
      OnCalendar: ['Mon..Fri 8,12,16,20:00'],
      Persistent: ['true'],
      RandomizedDelaySec: ['300'],
    });
    expect(timer.Install).toEqual({ WantedBy: ['timers.target'] });
    const service = parseUnit(units[0]?.text ?? '');
    expect(service.Service?.Type).toEqual(['exec']);
    // The tool's own lock serialises the levels; a busy domain (exit 3) is tried again, not failed.
    expect(service.Service?.RestartForceExitStatus).toEqual(['3']);
    expect(service.Service?.RuntimeDirectory).toEqual(['unifi-backup']);
    expect(service.Service?.RuntimeDirectoryMode).toEqual(['0700']);
    expect(service.Service?.UMask).toEqual(['0077']);
    expect(service.Service?.Environment).toEqual(['HOME=/root', 'RESTIC_CACHE_DIR=%C/unifi-backup']);
    expect(service.Service?.IOSchedulingClass).toEqual(['idle']);
    expect(service.Unit?.OnFailure).toBeUndefined();
    expect(execArgv(service.Service?.ExecStart?.[0] ?? '')).toEqual([
      'unifi-backup',
      'run',
      'incr',
      '--',
      'MY-VM-NAME',
    ]);
  });

  it('starts the notification unit when a run fails, naming the failed unit', () => {
    const units = buildSystemdUnits({ ...settings, notify: { config: '/etc/n.yaml', aliases: ['ops'] } }, [
      'a',
    ]);
    const service = parseUnit(units[0]?.text ?? '');
    expect(service.Unit?.OnFailure).toEqual(['unifi-backup-failure@%n.service']);
    const failure = units.find((unit) => unit.name === failureUnitName);
    const exec = execArgv(
      parseUnit(failure?.text ?? '').Service?.ExecStart?.[0]?.replaceAll('%I', 'X') ?? '',
    );
    expect(exec).toEqual([
      'unifi-backup',
      'notify',
      'send',
      '--config',
      '/etc/n.yaml',
      '--alias',
      'ops',
      '--title',
      'unifi-backup: a scheduled backup FAILED',
      '--msg',
      'systemd unit X failed; see: journalctl -u X',
    ]);
  });

  it('passes an awkward domain name to the tool as one intact argument', () => {
    const units = buildSystemdUnits({ ...settings, schedules: { full: 'Sat 20:00' } }, [oddName]);
    expect(units.map((unit) => unit.name)).toEqual([
      'unifi-backup-it\\x27s\\x20\\x2250\\x25\\x22\\x20\\x24HOME\\x5cvm-full.service',
      'unifi-backup-it\\x27s\\x20\\x2250\\x25\\x22\\x20\\x24HOME\\x5cvm-full.timer',
    ]);
    const service = parseUnit(units[0]?.text ?? '');
    expect(execArgv(service.Service?.ExecStart?.[0] ?? '')).toEqual([
      'unifi-backup',
      'run',
      'full',
      '--',
      oddName,
    ]);
    expect(service.Unit?.Description?.[0]).toContain('50%%');
  });

  it('leaves out the timers of unscheduled levels and the delay when not asked for', () => {
    const units = buildSystemdUnits(
      { schedules: { incr: 'hourly' }, program: 'unifi-backup', programOptions: [] },
      ['a'],
    );
    expect(units.map((unit) => unit.name)).toEqual([
      'unifi-backup-a-incr.service',
      'unifi-backup-a-incr.timer',
    ]);
    expect(parseUnit(units[1]?.text ?? '').Timer?.RandomizedDelaySec).toBeUndefined();
  });

  it('escapes unit names as systemd-escape does, keeping dashes readable', () => {
    expect(escapeUnitName('MY-VM_1.x')).toBe('MY-VM_1.x');
    expect(escapeUnitName('.hidden vm/ł')).toBe('\\x2ehidden\\x20vm\\x2f\\xc5\\x82');
  });

  it('prints the systemctl commands that enable the timers', () => {
    const units = buildSystemdUnits(settings, ['a']);
    expect(enableCommands(units)).toEqual([
      ['systemctl', 'daemon-reload'],
      [
        'systemctl',
        'enable',
        '--now',
        'unifi-backup-a-incr.timer',
        'unifi-backup-a-diff.timer',
        'unifi-backup-a-full.timer',
      ],
    ]);
  });

  /** Every unit of the example, with a notification unit, written to a fresh folder. */
  function writtenUnits(): string[] {
    const dir = mkdtempSync(join(tmpdir(), 'unifi-units-'));
    // verify wants the ExecStart program to exist: node stands in for the installed tool.
    const units = buildSystemdUnits(
      { ...settings, program: process.execPath, notify: { config: '/etc/n.yaml', aliases: ['ops'] } },
      ['MY-VM-NAME', oddName],
    );
    for (const unit of units) writeFileSync(join(dir, unit.name), unit.text);
    return units.map((unit) => join(dir, unit.name));
  }

  it('passes systemd-analyze verify', () => {
    const result = spawnSync('systemd-analyze', ['verify', '--man=no', ...writtenUnits()], {
      encoding: 'utf8',
    });
    expect({ status: result.status, stderr: result.stderr, stdout: result.stdout }).toEqual({
      status: 0,
      stderr: '',
      stdout: '',
    });
  });

  it('is rated an exposure of at most 5.0 by systemd-analyze security', () => {
    const services = writtenUnits().filter((file) => file.endsWith('.service'));
    expect(services.length).toBe(7);
    for (const file of services) {
      // A template is rated as one of its instances.
      const unit = file.endsWith('@.service') ? file.replace('@.service', '@x.service') : file;
      if (unit !== file) writeFileSync(unit, readFileSync(file));
      const result = spawnSync(
        'systemd-analyze',
        ['security', '--offline=yes', '--threshold=50', '--no-pager', basename(unit)],
        { encoding: 'utf8', cwd: dirname(unit) },
      );
      const exposure = Number(/Overall exposure level for .*: (\d+\.\d)/.exec(result.stdout)?.[1]);
      expect({ unit: basename(unit), status: result.status, stderr: result.stderr }).toEqual({
        unit: basename(unit),
        status: 0,
        stderr: '',
      });
      expect(exposure).toBeLessThanOrEqual(5.0);
    }
  });
});
