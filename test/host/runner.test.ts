import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import {
  MissingProgramError,
  ProcessError,
  ProgramKilledError,
  ProgramTimeoutError,
  programRunner,
  requirePrograms,
  runChecked,
} from '../../src/host/runner.js';

describe('programRunner: programs that cannot run, are killed or hang', () => {
  it('a missing program is a UserError naming it and its Debian package', async () => {
    const missing = programRunner({ argv: ['qemu-img-not-here', 'info'] });
    await expect(missing).rejects.toThrow(MissingProgramError);
    await expect(missing).rejects.toThrow(/^qemu-img-not-here is not installed or not on PATH/);
    expect(new MissingProgramError('qemu-img').message).toContain('apt-get install qemu-utils');
    expect(new MissingProgramError('/usr/bin/virsh').message).toContain('apt-get install libvirt-clients');
    expect(new MissingProgramError('restic')).toBeInstanceOf(UserError);
  });

  it('a program killed by a signal is a ProcessError naming the program and the signal', async () => {
    const killed = programRunner({ argv: ['sh', '-c', 'kill -KILL $$'] });
    await expect(killed).rejects.toThrow(ProgramKilledError);
    await expect(killed).rejects.toThrow(
      /^sh was killed by signal SIGKILL while running: sh -c kill -KILL \$\$\./,
    );
    await expect(killed).rejects.toBeInstanceOf(ProcessError);
  });

  it('a program over its timeout is stopped and reported', async () => {
    const started = Date.now();
    const hung = programRunner({ argv: ['sleep', '30'], timeoutMs: 200 });
    await expect(hung).rejects.toThrow(ProgramTimeoutError);
    await expect(hung).rejects.toThrow(/^sleep did not finish within 0\.2 s and was stopped: sleep 30\./);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a non-zero exit is a ProcessError, a UserError the CLI prints as it is', async () => {
    const failed = runChecked(programRunner, { argv: ['sh', '-c', 'echo nope >&2; exit 3'] }, 'the check');
    await expect(failed).rejects.toThrow(/^the check failed: nope$/);
    await expect(failed).rejects.toBeInstanceOf(UserError);
    await expect(failed).rejects.toMatchObject({ programExitCode: 3, exitCode: 1 });
  });
});

describe('programRunner: what a program reads, writes and sees', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-runner-'));

  it('returns stdout and stderr whole, final newlines kept, and a non-zero exit without rejecting', async () => {
    const result = await programRunner({ argv: ['sh', '-c', 'printf "a\\nb\\n"; echo oops >&2; exit 3'] });
    expect(result).toEqual({
      argv: ['sh', '-c', 'printf "a\\nb\\n"; echo oops >&2; exit 3'],
      exitCode: 3,
      stdout: 'a\nb\n',
      stderr: 'oops\n',
    });
  });

  it('feeds a string as standard input, and a program that does not read it still exits normally', async () => {
    expect((await programRunner({ argv: ['cat'], input: 'unicode ünï €\n' })).stdout).toBe('unicode ünï €\n');
    expect((await programRunner({ argv: ['true'], input: 'x'.repeat(1 << 20) })).exitCode).toBe(0);
  });

  it('starts a program before its input is known; a withdrawn input kills it before its input ends', async () => {
    let give: (text: string) => void = () => undefined;
    const started: number[] = [];
    const fed = programRunner({
      argv: ['cat'],
      input: new Promise((resolve) => {
        give = resolve;
      }),
      onStart: (pid) => started.push(pid),
    });
    await sleep(50);
    expect(started).toHaveLength(1);
    give('late input\n');
    expect((await fed).stdout).toBe('late input\n');
    // Its timeout counts from when the input comes, not from its start.
    const timed = programRunner({
      argv: ['cat'],
      input: sleep(300).then(() => 'in time\n'),
      timeoutMs: 200,
    });
    expect((await timed).stdout).toBe('in time\n');

    let withdraw: (error: Error) => void = () => undefined;
    // The shell would leave the file had its input ended before SIGKILL came.
    const ended = path.join(mkdtempSync(path.join(os.tmpdir(), 'ub-runner-')), 'input-ended');
    const killed = programRunner({
      argv: ['sh', '-c', 'cat >/dev/null; touch "$1"', 'sh', ended],
      input: new Promise((_resolve, reject) => {
        withdraw = reject;
      }),
    });
    await sleep(50);
    withdraw(new Error('not needed after all'));
    await expect(killed).rejects.toThrow('not needed after all');
    await sleep(100);
    expect(existsSync(ended)).toBe(false);
  });

  it('streams standard input from a file and standard output into one', async () => {
    const source = path.join(dir, 'source');
    const target = path.join(dir, 'target');
    writeFileSync(source, 'line 1\nline 2\n');
    writeFileSync(target, 'old contents, longer than the new ones\n');
    const result = await programRunner({ argv: ['cat'], inputFile: source, outputFile: target });
    expect(result).toMatchObject({ exitCode: 0, stdout: '' });
    expect(readFileSync(target, 'utf8')).toBe('line 1\nline 2\n');
  });

  it('a file it cannot open is a UserError naming the program and the file', async () => {
    const missing = path.join(dir, 'no-such-device');
    const run = programRunner({ argv: ['cat'], inputFile: missing });
    await expect(run).rejects.toThrow(new RegExp(`^cannot run cat: its input ${missing} cannot be opened`));
    await expect(run).rejects.toBeInstanceOf(UserError);
  });

  it('tells each output chunk as it arrives, and passes extra environment with LC_ALL=C', async () => {
    const chunks: string[] = [];
    const result = await programRunner({
      argv: ['sh', '-c', 'echo "$SECRET $LC_ALL"; echo err >&2'],
      env: { SECRET: 's3cret', LC_ALL: 'de_DE.UTF-8' },
      onOutput: (chunk) => chunks.push(chunk),
    });
    expect(result.stdout).toBe('s3cret C\n');
    expect(chunks.sort()).toEqual(['err\n', 's3cret C\n']);
  });

  it('a program that cannot be executed is a UserError saying it cannot run', async () => {
    const file = path.join(dir, 'not-executable');
    writeFileSync(file, '#!/bin/sh\n');
    chmodSync(file, 0o644);
    const run = programRunner({ argv: [file] });
    await expect(run).rejects.toThrow(new RegExp(`^cannot run ${file}: spawn ${file} EACCES\\. Check that`));
    await expect(run).rejects.not.toBeInstanceOf(MissingProgramError);
    const notDir = programRunner({ argv: [path.join(file, 'below')] });
    await expect(notDir).rejects.toThrow(/^cannot run .*ENOTDIR/);
    await expect(notDir).rejects.toBeInstanceOf(UserError);
  });
});

describe('programRunner: the tool ended while a program runs', () => {
  it('a program still running when the tool gets SIGTERM is sent SIGTERM too', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-runner-exit-'));
    const tool = path.join(dir, 'tool.mjs');
    // The runner as the CLI bundles it, running one long program whose pid it prints.
    await build({
      stdin: {
        contents:
          "import { programRunner } from './src/host/runner.ts';\n" +
          "await programRunner({ argv: ['sh', '-c', 'echo $$; exec sleep 600'], onOutput: (c) => process.stdout.write(c) });",
        resolveDir: process.cwd(),
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: tool,
      logLevel: 'warning',
    });
    const child = spawn(process.execPath, [tool], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    const program = Number(line);
    expect(running(program)).toBe(true);
    child.kill('SIGTERM');
    expect(await once(child, 'exit')).toEqual([null, 'SIGTERM']);
    // Gone (or a zombie waiting to be reaped) long before its sleep would end.
    while (running(program)) await sleep(50);
  });
});

/** Whether a process exists and is not a zombie. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

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
