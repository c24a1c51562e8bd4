import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DomainBusyError, UserError } from '../../src/errors.js';
import { lockDomain } from '../../src/lock/lock.js';
import type { OpsContext } from '../../src/ops/context.js';
import type { RunRecord } from '../../src/ops/run-record.js';
import {
  appendRun,
  boundRuns,
  keptRuns,
  lastRuns,
  recordRuns,
  runRecordFile,
} from '../../src/ops/run-record.js';

const stateDir = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'ub-runs-')), 'state');

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
const record = (minute: number, over: Partial<RunRecord> = {}): RunRecord => ({
  verb: 'run',
  level: 'incr',
  start: at(minute),
  end: at(minute),
  result: 'ok',
  ...over,
});

/** An incr taking the records' lock first whose domain turns out busy: nothing ran, nothing is written. */
const busyIncrLockingFirst = (ctx: OpsContext) =>
  recordRuns(ctx, 'backup', 'incr', () => Promise.reject(new DomainBusyError('locked')), undefined, {
    lockFirst: true,
  });

function context(dir: string, dryRun = false): OpsContext & { logged: string[] } {
  const logged: string[] = [];
  let minute = 0;
  return {
    host: undefined as never,
    lockDir: '/nonexistent',
    stateDir: dir,
    dryRun,
    log: (line) => logged.push(line),
    progress: () => undefined,
    now: () => new Date(Date.UTC(2026, 0, 1, 0, minute++)),
    logged,
  };
}

describe('run records', () => {
  it('keep the newest records and the newest of each verb, level and result', () => {
    let runs: RunRecord[] = [];
    runs = boundRuns(runs, record(0, { level: 'full' }));
    runs = boundRuns(runs, record(1, { result: 'failed', error: 'restic said no' }));
    for (let i = 2; i < 200; i++) runs = boundRuns(runs, record(i));
    expect(runs).toHaveLength(keptRuns + 2);
    expect(runs[0]).toEqual(record(0, { level: 'full' }));
    expect(runs[1]?.result).toBe('failed');
    expect(runs.at(-1)).toEqual(record(199));
  });

  it('are written privately and read back, oldest first', async () => {
    const dir = stateDir();
    expect(lastRuns(dir, 'web "1"')).toEqual([]);
    await appendRun(dir, 'web "1"', record(1));
    await appendRun(dir, 'web "1"', record(2, { verb: 'backup', level: 'diff' }));
    expect(lastRuns(dir, 'web "1"').map((r) => r.level)).toEqual(['incr', 'diff']);
    expect(statSync(runRecordFile(dir, 'web "1"')).mode & 0o777).toBe(0o600);
  });

  it('are appended under a lock: a record written by another process meanwhile is kept', async () => {
    const dir = stateDir();
    await appendRun(dir, 'vm', record(1));
    const file = runRecordFile(dir, 'vm');
    const theirs = path.join(path.dirname(dir), 'theirs.json');
    writeFileSync(theirs, JSON.stringify({ domain: 'vm', runs: [record(1), record(2)] }));
    // Another process holds the records' lock and, once told, writes its own append, then lets go.
    const other = spawn(
      'flock',
      [
        '--exclusive',
        '--no-fork',
        `${file.slice(0, -'.json'.length)}.lock`,
        'sh',
        '-c',
        'echo held; read go; cat "$1" > "$2"',
        'sh',
        theirs,
        file,
      ],
      { stdio: ['pipe', 'pipe', 'ignore'] },
    );
    await new Promise((resolve, reject) => {
      other.stdout.once('data', resolve);
      other.once('exit', (code) => {
        reject(new Error(`flock exited ${String(code)} before holding the lock`));
      });
    });
    const ours = appendRun(dir, 'vm', record(3));
    other.stdin.end('go\n');
    await ours;
    expect(lastRuns(dir, 'vm')).toEqual([record(1), record(2), record(3)]);
  });

  it('lose none of many appends at once', async () => {
    const dir = stateDir();
    await Promise.all(Array.from({ length: 8 }, (_, i) => appendRun(dir, 'vm', record(i))));
    expect(
      lastRuns(dir, 'vm')
        .map((r) => r.start)
        .sort(),
    ).toEqual(Array.from({ length: 8 }, (_, i) => at(i)));
  });

  it('refuse a file that is not one of ours, naming it and what to do', async () => {
    const dir = stateDir();
    await appendRun(dir, 'vm', record(1));
    const file = runRecordFile(dir, 'vm');
    const text = readFileSync(file, 'utf8');
    for (const bad of [
      text.slice(0, 20),
      text.replace('"ok"', '"maybe"'),
      text.replace('"domain": "vm"', '"domain": "other"'),
      JSON.stringify({ domain: 'vm', runs: [{ ...record(1), snapshot: '../../etc' }] }),
    ]) {
      writeFileSync(file, bad);
      expect(() => lastRuns(dir, 'vm')).toThrow(UserError);
      expect(() => lastRuns(dir, 'vm')).toThrow(
        new RegExp(`run records of domain 'vm' ${file}.*mv '${file}'`, 's'),
      );
    }
  });

  it('record success with details, failure with its message, and nothing for busy or dry runs', async () => {
    const dir = stateDir();
    const ctx = context(dir);
    const ok = recordRuns(
      ctx,
      'run',
      'incr',
      () => Promise.resolve({ id: 'abcdef12' }),
      (v) => ({
        level: 'diff',
        snapshot: v.id,
        bytesAdded: 10,
      }),
    );
    await ok('vm');
    const failing = recordRuns(ctx, 'sync', 'full', () => Promise.reject(new UserError('disk full')));
    await expect(failing('vm')).rejects.toThrow('disk full');
    const busy = recordRuns(ctx, 'backup', 'incr', () => Promise.reject(new DomainBusyError('locked')));
    await expect(busy('vm')).rejects.toThrow('locked');
    await recordRuns(context(dir, true), 'backup', 'incr', () => Promise.resolve(1))('vm');
    expect(lastRuns(dir, 'vm')).toEqual([
      {
        verb: 'run',
        level: 'diff',
        start: at(0),
        end: at(1),
        result: 'ok',
        snapshot: 'abcdef12',
        bytesAdded: 10,
      },
      { verb: 'sync', level: 'full', start: at(2), end: at(3), result: 'failed', error: 'disk full' },
    ]);
  });

  it('with lockFirst, hold the records while the operation runs, and give them back when nothing ran', async () => {
    const dir = stateDir();
    const ctx = context(dir);
    const recordsBusy = async () => {
      try {
        (
          await lockDomain(path.join(dir, 'runs'), 'vm', 'probe', { suffix: '.lock', waitSeconds: 0 })
        ).release();
        return false;
      } catch {
        return true;
      }
    };
    const seen: boolean[] = [];
    const incr = recordRuns(
      ctx,
      'backup',
      'incr',
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 200));
        seen.push(await recordsBusy());
        return 1;
      },
      () => ({}),
      { lockFirst: true },
    );
    await incr('vm');
    expect(seen).toEqual([true]);
    expect(await recordsBusy()).toBe(false);
    expect(lastRuns(dir, 'vm').map((r) => r.result)).toEqual(['ok']);
    const busy = busyIncrLockingFirst(ctx);
    await expect(busy('vm')).rejects.toThrow('locked');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await recordsBusy()).toBe(false);
    expect(lastRuns(dir, 'vm')).toHaveLength(1);
  });

  it('with lockFirst and the records held elsewhere: nothing waits at the start, the write waits its turn', async () => {
    const dir = stateDir();
    const ctx = context(dir);
    await appendRun(dir, 'vm', record(1));
    const other = await lockDomain(path.join(dir, 'runs'), 'vm', 'verify', {
      suffix: '.lock',
      waitSeconds: 1,
    });
    // A busy domain is told at once, not after the records' minute of waiting.
    const busy = busyIncrLockingFirst(ctx);
    await expect(busy('vm')).rejects.toThrow('locked');
    // …and no flock is left waiting for the records (it kept the CLI running for a minute).
    await new Promise((resolve) => setTimeout(resolve, 200));
    const children = spawnSync('ps', ['--ppid', String(process.pid), '-o', 'args='], { encoding: 'utf8' });
    expect(children.stdout.split('\n').filter((l) => l.startsWith('flock'))).toEqual([]);
    setTimeout(() => {
      other.release();
    }, 300);
    await recordRuns(ctx, 'backup', 'incr', () => Promise.resolve(1), undefined, { lockFirst: true })('vm');
    expect(lastRuns(dir, 'vm').map((r) => r.verb)).toEqual(['run', 'backup']);
  }, 10_000);

  it('a record that cannot be written is told and does not change the outcome', async () => {
    const dir = stateDir();
    await appendRun(dir, 'vm', record(1));
    writeFileSync(runRecordFile(dir, 'vm'), 'garbage');
    const ctx = context(dir);
    await expect(recordRuns(ctx, 'backup', 'incr', () => Promise.resolve(7))('vm')).resolves.toBe(7);
    expect(ctx.logged.join('\n')).toMatch(/domain 'vm': the run record was not written: .*not valid JSON/);
  });
});
