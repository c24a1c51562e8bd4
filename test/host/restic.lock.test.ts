import { describe, expect, it } from 'vitest';
import { lockHolder, lockRetryDelays, Restic, ResticError } from '../../src/host/restic.js';
import type { Runner } from '../../src/host/runner.js';

const locked =
  'unable to create lock in backend: repository is already locked exclusively by PID 4242 on host-b ' +
  'by root (UID 0, GID 0)\nlock was created at 2026-03-02 10:00:00 (2s ago)\nstorage ID 1a2b3c4d\n';

/** restic answering "locked" to the first `lockedTimes` runs, then succeeding. */
function lockedRunner(lockedTimes: number) {
  let calls = 0;
  const runner: Runner = (request) => {
    calls++;
    const reply = calls <= lockedTimes ? { exitCode: 1, stderr: locked } : { exitCode: 0, stderr: '' };
    return Promise.resolve({ argv: request.argv, stdout: '[]', ...reply });
  };
  return { runner, calls: () => calls };
}

const settings = (lockWaitSeconds?: number) => ({
  repository: '/srv/restic',
  options: [],
  env: {},
  ...(lockWaitSeconds === undefined ? {} : { lockWaitSeconds }),
});

function waiting() {
  const slept: number[] = [];
  const logged: string[] = [];
  return {
    slept,
    logged,
    hooks: {
      sleep: (ms: number) => {
        slept.push(ms);
        return Promise.resolve();
      },
      log: (line: string) => logged.push(line),
    },
  };
}

describe('a repository locked by another host', () => {
  it('is waited for with growing, bounded retries', () => {
    expect(lockRetryDelays(0)).toEqual([]);
    expect(lockRetryDelays(10)).toEqual([2000, 4000, 4000]);
    const delays = lockRetryDelays(300);
    expect(delays.reduce((a, b) => a + b, 0)).toBe(300_000);
    expect(Math.max(...delays)).toBe(30_000);
    expect(lockHolder(locked)).toBe('PID 4242 on host-b');
  });

  it('is tried again until it is free, saying once who holds it', async () => {
    const { runner, calls } = lockedRunner(3);
    const w = waiting();
    await new Restic(runner, settings(), {}, w.hooks).snapshots();
    expect(calls()).toBe(4);
    expect(w.slept).toEqual([2000, 4000, 8000]);
    expect(w.logged).toEqual([
      'listing restic snapshots: the repository is locked by PID 4242 on host-b; waiting up to 300 s (restic.lock-wait)',
    ]);
  });

  it('fails clearly when it stays locked past restic.lock-wait', async () => {
    const { runner, calls } = lockedRunner(100);
    const w = waiting();
    const error = await new Restic(runner, settings(10), {}, w.hooks)
      .forget({ tag: 'vm', rules: { keepLast: 1 }, prune: false })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResticError);
    expect((error as ResticError).failure).toBe('locked');
    expect((error as ResticError).message).toMatch(
      /restic forget \(repository \/srv\/restic\): the repository stayed locked by PID 4242 on host-b for 10 s.*restic\.lock-wait.*restic unlock/,
    );
    expect(calls()).toBe(4);
  });

  it('is not waited for with restic.lock-wait: 0', async () => {
    const { runner, calls } = lockedRunner(1);
    const error = await new Restic(runner, settings(0), {}, waiting().hooks).check().catch((e: unknown) => e);
    expect((error as ResticError).message).toMatch(/repository is already locked/);
    expect(calls()).toBe(1);
  });
});
