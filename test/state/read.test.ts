import {
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { discardJournal, Journal, journalFile, readJournal } from '../../src/journal/journal.js';
import { maintenanceFile, readMaintenance } from '../../src/ops/maintenance-record.js';
import { readReplicaState, stateFile } from '../../src/ops/replicastate.js';

const scratch = () => mkdtempSync(path.join(os.tmpdir(), 'ub-read-'));
const nobody = 65534;
const step = { kind: 'purge', files: ['/srv/vm/a.qcow2'] };
const good = {
  domain: 'vm',
  verb: 'backup diff',
  pid: 1,
  startedAt: '2026-01-01T00:00:00Z',
  steps: [step],
  done: 0,
};

function stateWithJournal(content: string | ((file: string) => void)): { stateDir: string; file: string } {
  const stateDir = path.join(scratch(), 'state');
  Journal.begin(stateDir, { domain: 'vm', verb: 'x', steps: [], tops: new Map(), notes: [] }).finish();
  const file = journalFile(stateDir, 'vm');
  if (typeof content === 'string') writeFileSync(file, content);
  else content(file);
  return { stateDir, file };
}

const snapshot = (dir: string) =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .map(
      (e) =>
        `${path.join(e.parentPath, e.name)} ${e.isSymbolicLink() ? 'link' : e.isFile() ? readFileSync(path.join(e.parentPath, e.name), 'utf8') : 'other'}`,
    )
    .sort();

describe('a journal that is not one we wrote', () => {
  const cases: [string, string | ((file: string) => void), string][] = [
    ['{}', '{}', 'is not one this version of unifi-backup wrote (domain: Invalid input'],
    ['truncated JSON', JSON.stringify(good).slice(0, 40), 'is not valid JSON ('],
    ['empty', '', 'is not valid JSON ('],
    ['wrong types', JSON.stringify({ ...good, done: 'two', steps: 'purge everything' }), 'steps: '],
    [
      'an unknown step',
      JSON.stringify({ ...good, steps: [{ kind: 'rm -rf', files: ['/'] }] }),
      'steps.0.kind: ',
    ],
    [
      'more steps done than planned',
      JSON.stringify({ ...good, done: 2 }),
      'done: more steps done than planned',
    ],
    [
      'another domain’s',
      JSON.stringify({ ...good, domain: 'other' }),
      'domain: Invalid input: expected "vm"',
    ],
    [
      'a symbolic link',
      (file) => {
        symlinkSync('/etc/hostname', file);
      },
      'is a symbolic link; refusing to follow it',
    ],
    ['a FIFO', (file) => execFileSync('mkfifo', [file]), 'is not a regular file'],
    [
      'owned by another user',
      (file) => {
        writeFileSync(file, JSON.stringify(good));
        chownSync(file, nobody, nobody);
      },
      'belongs to uid 65534',
    ],
  ];
  it.each(cases)(
    '%s: a UserError naming the file and the repair command; nothing changes',
    (_name, content, problem) => {
      const { stateDir, file } = stateWithJournal(content);
      const before = snapshot(stateDir);
      let error: unknown;
      try {
        readJournal(stateDir, 'vm');
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(UserError);
      const message = (error as Error).message;
      expect(message).toContain(file);
      expect(message).toContain(problem);
      expect(message).toContain("unifi-backup repair 'vm' --discard-journal");
      expect(snapshot(stateDir)).toEqual(before);
    },
  );

  it('is shown (size-limited, control characters escaped, a link not followed) and removed by --discard-journal', () => {
    const big = stateWithJournal(`{"domain":"vm",\u001b[2J${'x'.repeat(10_000)}`);
    const held = discardJournal(big.stateDir, 'vm', false) ?? '';
    expect(held).toMatch(
      /^10\d{3} bytes, owner uid 0:\n\{"domain":"vm",\\x1b\[2Jx+\n… \d+ more bytes not shown$/,
    );
    expect(readdirSync(path.dirname(big.file))).toEqual([]);
    expect(readJournal(big.stateDir, 'vm')).toBeUndefined();

    const link = stateWithJournal((file) => {
      symlinkSync('/etc/hostname', file);
    });
    const hostname = readFileSync('/etc/hostname', 'utf8');
    expect(discardJournal(link.stateDir, 'vm', true)).toBe('a symbolic link to /etc/hostname');
    expect(readdirSync(path.dirname(link.file))).toEqual(['vm.json']);
    expect(discardJournal(link.stateDir, 'vm', false)).toBe('a symbolic link to /etc/hostname');
    expect(readdirSync(path.dirname(link.file))).toEqual([]);
    expect(readFileSync('/etc/hostname', 'utf8')).toBe(hostname);
  });

  it('reads back what Journal wrote', () => {
    const stateDir = path.join(scratch(), 'state');
    const journal = Journal.begin(stateDir, {
      domain: 'vm',
      verb: 'backup diff',
      steps: [step as never],
      tops: new Map(),
      notes: [],
    });
    journal.stepDone();
    expect(readJournal(stateDir, 'vm')).toMatchObject({
      domain: 'vm',
      verb: 'backup diff',
      steps: [step],
      done: 1,
    });
    expect((statSync(journalFile(stateDir, 'vm')).mode & 0o777).toString(8)).toBe('600');
  });
});

describe('a state folder another user could write to', () => {
  it.each([
    [
      'owned by nobody',
      (dir: string) => {
        chownSync(dir, nobody, nobody);
      },
      'owned by uid 65534',
    ],
    [
      'mode 0777',
      (dir: string) => mkdirSync(dir, { recursive: true, mode: 0o777 }),
      'writable by group or others',
    ],
  ])('%s: journals are neither read nor written there', (_name, spoil, problem) => {
    const { stateDir, file } = stateWithJournal(JSON.stringify(good));
    const journalDir = path.dirname(file);
    spoil(journalDir);
    if (problem.startsWith('writable')) execFileSync('chmod', ['777', journalDir]);
    const before = snapshot(stateDir);
    expect(() => readJournal(stateDir, 'vm')).toThrow(`the state folder ${journalDir} is ${problem}`);
    expect(() =>
      Journal.begin(stateDir, { domain: 'vm', verb: 'x', steps: [], tops: new Map(), notes: [] }),
    ).toThrow('or give another folder with --state-dir or UNIFI_BACKUP_STATE_DIR');
    expect(snapshot(stateDir)).toEqual(before);
  });
});

describe('maintenance record and replica state', () => {
  it('a corrupt one is a UserError naming the file and what to do; nothing changes', () => {
    const stateDir = path.join(scratch(), 'state');
    const record = maintenanceFile(stateDir, 'vm');
    mkdirSync(path.dirname(record), { recursive: true, mode: 0o700 });
    writeFileSync(record, '{"domain":"vm","disks":[{"target":');
    expect(() => readMaintenance(stateDir, 'vm')).toThrow(
      new RegExp(
        `maintenance record of domain 'vm' ${record} is not valid JSON .*backup showchain vm.*mv '${record}'`,
      ),
    );
    expect(readFileSync(record, 'utf8')).toBe('{"domain":"vm","disks":[{"target":');

    const dir = scratch();
    writeFileSync(stateFile(dir, 'vm'), '{}');
    expect(() => readReplicaState(dir, 'vm')).toThrow(
      `the replica state of domain 'vm' ${stateFile(dir, 'vm')} is not one this version of unifi-backup wrote (version: `,
    );
    expect(readFileSync(stateFile(dir, 'vm'), 'utf8')).toBe('{}');
  });
});
