import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DomainBusyError, UserError } from '../../src/errors.js';
import { lockDomain, lockFile } from '../../src/lock/lock.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function lockDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-lock-'));
  dirs.push(dir);
  return path.join(dir, 'locks');
}

describe('lockDomain', () => {
  it('lets one holder in and names it to the next', async () => {
    const dir = lockDir();
    const held = await lockDomain(dir, "web 'prod'", 'backup incr');
    const second = lockDomain(dir, "web 'prod'", 'backup diff');
    await expect(second).rejects.toBeInstanceOf(DomainBusyError);
    await expect(second).rejects.toThrow(
      /domain 'web 'prod'' is busy: 'backup incr' \(pid \d+ on .*\) holds its lock/,
    );
    held.release();
    (await lockDomain(dir, "web 'prod'", 'backup diff')).release();
  });

  it('locks domains independently', async () => {
    const dir = lockDir();
    const a = await lockDomain(dir, 'a', 'x');
    const b = await lockDomain(dir, 'b', 'x');
    a.release();
    b.release();
  });

  it('is free again once its holder is killed with SIGKILL', async () => {
    const dir = lockDir();
    (await lockDomain(dir, 'vm', 'x')).release();
    // The holder says when it holds the lock: no guess at how long flock takes to start.
    const holder = spawn(
      'flock',
      ['--exclusive', '--no-fork', lockFile(dir, 'vm'), 'sh', '-c', 'echo held; exec sleep 60'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    await new Promise((resolve, reject) => {
      holder.stdout.once('data', resolve);
      holder.once('exit', (code) => {
        reject(new Error(`flock exited ${String(code)} before holding the lock`));
      });
    });
    await expect(lockDomain(dir, 'vm', 'backup incr')).rejects.toBeInstanceOf(DomainBusyError);
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.on('close', resolve));
    (await lockDomain(dir, 'vm', 'backup incr')).release();
  });

  it('gives odd names plain, distinct file names', () => {
    expect(path.basename(lockFile('/l', '../x'))).toBe('..%2Fx.lock'.replace('..', '%2E.'));
    expect(lockFile('/l', 'a b')).not.toBe(lockFile('/l', 'a_b'));
  });
});

describe('a lock folder or file another user could change', () => {
  const nobody = 65534;

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
      (dir: string) => {
        chmodSync(dir, 0o777);
      },
      'writable by group or others (mode 777)',
    ],
    [
      'mode 1777 (like /run/lock)',
      (dir: string) => {
        chmodSync(dir, 0o1777);
      },
      'writable by group or others (mode 1777)',
    ],
  ])('refuses a folder %s, naming it and the fix, and changes nothing', async (_case, spoil, problem) => {
    const dir = lockDir();
    mkdirSync(dir, { mode: 0o700 });
    spoil(dir);
    const attempt = lockDomain(dir, 'vm', 'backup incr');
    await expect(attempt).rejects.toBeInstanceOf(UserError);
    await expect(attempt).rejects.toThrow(`the lock folder ${dir} is ${problem}`);
    await expect(attempt).rejects.toThrow(
      `chown root:root '${dir}'; chmod 700 '${dir}') or give another folder with --lock-dir`,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a lock file hard-linked to another file, and leaves that file as it was', async () => {
    const dir = lockDir();
    (await lockDomain(dir, 'a', 'x')).release();
    const precious = path.join(path.dirname(dir), 'precious');
    writeFileSync(precious, 'precious\n', { mode: 0o600 });
    linkSync(precious, lockFile(dir, 'vm'));
    await expect(lockDomain(dir, 'vm', 'backup incr')).rejects.toThrow(
      `the lock file ${lockFile(dir, 'vm')} has 2 hard links`,
    );
    expect(readFileSync(precious, 'utf8')).toBe('precious\n');
  });

  it('refuses a lock file that belongs to another user', async () => {
    const dir = lockDir();
    (await lockDomain(dir, 'vm', 'x')).release();
    chownSync(lockFile(dir, 'vm'), nobody, nobody);
    await expect(lockDomain(dir, 'vm', 'backup incr')).rejects.toThrow(
      `the lock file ${lockFile(dir, 'vm')} belongs to uid 65534`,
    );
  });

  it.each([
    [
      'removed',
      (file: string) => {
        rmSync(file);
      },
    ],
    [
      'replaced',
      (file: string) => {
        writeFileSync(`${file}.new`, '', { mode: 0o600 });
        renameSync(`${file}.new`, file);
      },
    ],
  ])('keeps the domain busy when its lock file is %s while held', async (_case, tamper) => {
    const dir = lockDir();
    const held = await lockDomain(dir, 'vm', 'backup incr');
    tamper(lockFile(dir, 'vm'));
    const second = lockDomain(dir, 'vm', 'backup diff');
    await expect(second).rejects.toBeInstanceOf(DomainBusyError);
    await expect(second).rejects.toThrow(
      `domain 'vm' is busy: pid ${process.pid} holds a lock file that was removed or replaced at ${lockFile(dir, 'vm')}`,
    );
    held.release();
    (await lockDomain(dir, 'vm', 'backup diff')).release();
  });

  it('a lock this process holds on another file does not hide a removed one held at the same path', async () => {
    const dir = lockDir();
    const records = await lockDomain(path.join(dir, 'runs'), 'vm', 'run record', {
      suffix: '.lock',
      waitSeconds: 1,
    });
    const held = await lockDomain(dir, 'vm', 'backup incr');
    held.release();
    const again = await lockDomain(dir, 'vm', 'backup incr');
    rmSync(lockFile(dir, 'vm'));
    await expect(lockDomain(dir, 'vm', 'backup diff')).rejects.toThrow(/holds a lock file that was removed/);
    again.release();
    records.release();
  });
});
