import * as fs from 'node:fs';
import type * as FsPromises from 'node:fs/promises';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { lockDomain, lockFile } from '../../src/lock/lock.js';

// /proc/locks as the kernel lists it, cut to this test's own lock files (other processes' flocks
// on the same filesystem would make the scan run for a reason of theirs) and listed 50 ms late, as
// the kernel's RCU grace period can make it: after a lock taken side by side is held. Every
// directory read is counted: the scan of every process's descriptors starts with reading /proc.
const ours = new Set<string>();
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof FsPromises>();
  return {
    ...actual,
    readFile: vi.fn(async (file: string, encoding: BufferEncoding) => {
      if (file !== '/proc/locks') return actual.readFile(file, encoding);
      await sleep(50);
      return (await actual.readFile(file, encoding))
        .split('\n')
        .filter((line) => [...ours].some((ino) => line.includes(`:${ino} `)))
        .join('\n');
    }),
  };
});
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof fs>();
  return { ...actual, readdirSync: vi.fn(actual.readdirSync) };
});

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  ours.clear();
  vi.mocked(fs.readdirSync).mockClear();
});

function procScans(): number {
  return vi.mocked(fs.readdirSync).mock.calls.filter(([folder]) => folder === '/proc').length;
}

describe('lockDomain, the scan for holders of a removed lock file', () => {
  it('does not scan every process for two locks this process takes side by side', async () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'ub-lock-')), 'locks');
    dirs.push(path.dirname(dir));
    const records = path.join(dir, 'runs');
    // Both files exist first, so their inodes are known to the /proc/locks filter.
    (await lockDomain(records, 'vm', 'run record', { suffix: '.lock' })).release();
    (await lockDomain(dir, 'vm', 'backup incr')).release();
    for (const file of [lockFile(records, 'vm', '.lock'), lockFile(dir, 'vm')])
      ours.add(String(statSync(file).ino));
    vi.mocked(fs.readdirSync).mockClear();

    // As an incr takes them: the run records' lock and the domain's at once.
    const locks = await Promise.all([
      lockDomain(records, 'vm', 'run record', { suffix: '.lock' }),
      lockDomain(dir, 'vm', 'backup incr'),
    ]);
    expect(procScans()).toBe(0);
    for (const lock of locks) lock.release();
  });

  it('still scans, and finds the holder, when a lock file is removed while held', async () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'ub-lock-')), 'locks');
    dirs.push(path.dirname(dir));
    const held = await lockDomain(dir, 'vm', 'backup incr');
    ours.add(String(statSync(lockFile(dir, 'vm')).ino));
    rmSync(lockFile(dir, 'vm'));
    await expect(lockDomain(dir, 'vm', 'backup diff')).rejects.toThrow(
      `pid ${process.pid} holds a lock file that was removed or replaced`,
    );
    expect(procScans()).toBe(1);
    held.release();
  });
});
