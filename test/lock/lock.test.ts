import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DomainBusyError } from '../../src/errors.js';
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
    const holder = spawn('flock', ['--exclusive', '--no-fork', lockFile(dir, 'vm'), 'sleep', '60'], {
      stdio: 'ignore',
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
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
