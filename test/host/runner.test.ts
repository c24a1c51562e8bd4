import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import {
  MissingProgramError,
  ProcessError,
  ProgramKilledError,
  ProgramTimeoutError,
  execaRunner,
  requirePrograms,
  runChecked,
} from '../../src/host/runner.js';

describe('execaRunner: programs that cannot run, are killed or hang', () => {
  it('a missing program is a UserError naming it and its Debian package', async () => {
    const missing = execaRunner({ argv: ['qemu-img-not-here', 'info'] });
    await expect(missing).rejects.toThrow(MissingProgramError);
    await expect(missing).rejects.toThrow(/^qemu-img-not-here is not installed or not on PATH/);
    expect(new MissingProgramError('qemu-img').message).toContain('apt-get install qemu-utils');
    expect(new MissingProgramError('/usr/bin/virsh').message).toContain('apt-get install libvirt-clients');
    expect(new MissingProgramError('restic')).toBeInstanceOf(UserError);
  });

  it('a program killed by a signal is a ProcessError naming the program and the signal', async () => {
    const killed = execaRunner({ argv: ['sh', '-c', 'kill -KILL $$'] });
    await expect(killed).rejects.toThrow(ProgramKilledError);
    await expect(killed).rejects.toThrow(
      /^sh was killed by signal SIGKILL while running: sh -c kill -KILL \$\$\./,
    );
    await expect(killed).rejects.toBeInstanceOf(ProcessError);
  });

  it('a program over its timeout is stopped and reported', async () => {
    const started = Date.now();
    const hung = execaRunner({ argv: ['sleep', '30'], timeoutMs: 200 });
    await expect(hung).rejects.toThrow(ProgramTimeoutError);
    await expect(hung).rejects.toThrow(/^sleep did not finish within 0\.2 s and was stopped: sleep 30\./);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a non-zero exit is a ProcessError, a UserError the CLI prints as it is', async () => {
    const failed = runChecked(execaRunner, { argv: ['sh', '-c', 'echo nope >&2; exit 3'] }, 'the check');
    await expect(failed).rejects.toThrow(/^the check failed: nope$/);
    await expect(failed).rejects.toBeInstanceOf(UserError);
    await expect(failed).rejects.toMatchObject({ programExitCode: 3, exitCode: 1 });
  });
});

describe('requirePrograms', () => {
  it('finds executables on PATH and names the first missing one with its Debian package', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-path-'));
    writeFileSync(path.join(dir, 'virsh'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(path.join(dir, 'qemu-img'), 'not executable', { mode: 0o644 });
    expect(() => {
      requirePrograms(['virsh'], { PATH: `/nonexistent:${dir}` });
    }).not.toThrow();
    expect(() => {
      requirePrograms(['virsh', 'qemu-img'], { PATH: dir });
    }).toThrow(/qemu-img is not installed or not on PATH.*apt-get install qemu-utils/);
  });
});
