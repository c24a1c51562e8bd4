import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import type { ProgramRequest, ProgramResult } from '../../src/host/runner.js';
import type { Timeouts } from '../../src/host/timeouts.js';
import { defaultTimeouts } from '../../src/host/timeouts.js';
import { BlockJobStalledError, Virsh } from '../../src/host/virsh.js';

type Answer = { exitCode?: number; stdout?: string; stderr?: string };

/**
 * A scripted virsh (the polling logic is under test, not libvirt): each `blockjob` run takes the
 * next answer of its kind, anything else succeeds silently.
 */
function scripted(answers: { info: Answer[]; pivot?: Answer[] }, timeouts?: Timeouts) {
  const commands: string[] = [];
  const runner = (request: ProgramRequest): Promise<ProgramResult> => {
    const args = request.argv.slice(4);
    commands.push(args.filter((a) => a.startsWith('--') && a !== '--domain' && a !== '--path').join(' '));
    const queue = args.includes('--pivot') ? answers.pivot : args.includes('--info') ? answers.info : [];
    const answer = queue?.shift() ?? {};
    return Promise.resolve({
      argv: request.argv,
      exitCode: answer.exitCode ?? 0,
      stdout: answer.stdout ?? '',
      stderr: answer.stderr ?? '',
    });
  };
  return { virsh: new Virsh(runner, 'qemu:///system', timeouts), commands };
}

const job = (cur: number, end: number): Answer => ({
  stdout: ` type=Active Block Commit\n bandwidth=0\n cur=${cur}\n end=${end}\n`,
});
const down: Answer = { exitCode: 1, stderr: 'error: failed to connect to the hypervisor\n' };

describe('block jobs: started without --wait, polled until done', () => {
  it('an active commit is pivoted once ready, again when ready was lost; progress is reported', async () => {
    const { virsh, commands } = scripted({
      info: [job(1, 4), job(4, 4), job(3, 4), job(4, 4)],
      pivot: [
        { exitCode: 1, stderr: "error: block copy still active: disk 'vda' not ready for pivot yet\n" },
      ],
    });
    const seen: number[] = [];
    await virsh.blockCommit('vm', 'vda', '/b/vda.qcow2', (p) => seen.push(p));
    expect(seen).toEqual([25, 100, 75, 100]);
    expect(commands).toEqual([
      '--base --active',
      '--info --raw',
      '--info --raw',
      '--pivot',
      '--info --raw',
      '--info --raw',
      '--pivot',
    ]);
  });

  it('a commit that ends before it is ready is a failure that names the disk and says what to do', async () => {
    const { virsh, commands } = scripted({ info: [job(1, 4), {}] });
    const failure = virsh.blockCommit('vm', 'vda', '/b/vda.qcow2', () => undefined);
    await expect(failure).rejects.toThrow(UserError);
    await expect(failure).rejects.toThrow(/disk vda of domain 'vm' ended before it was ready.*repair 'vm'/);
    expect(commands).not.toContain('--pivot');
  });

  it('a pull is waited for through a libvirtd restart; other errors stop the wait', async () => {
    const pull = scripted({ info: [job(1, 4), down, down, {}] });
    await pull.virsh.blockPull('vm', 'vda', '/b/vda.qcow2', () => undefined);
    expect(pull.commands.filter((c) => c === '--info --raw')).toHaveLength(4);

    const gone = scripted({ info: [{ exitCode: 1, stderr: "error: failed to get domain 'vm'\n" }] });
    await expect(gone.virsh.blockPull('vm', 'vda', '/b/vda.qcow2', () => undefined)).rejects.toThrow(
      /no such domain/,
    );
  });

  it('a job whose progress does not move for the stall timeout is aborted and named; moving ones are not', async () => {
    const stallMs = 150;
    const moving = scripted(
      { info: [job(1, 9), job(2, 9), job(3, 9), job(4, 9), job(5, 9), job(6, 9), {}] },
      { ...defaultTimeouts, blockJobStallMs: stallMs },
    );
    await moving.virsh.blockPull('vm', 'vda', '/b/vda.qcow2', () => undefined);
    expect(moving.commands).not.toContain('--abort');

    const stuck = scripted(
      { info: Array.from({ length: 50 }, () => job(2, 9)) },
      { ...defaultTimeouts, blockJobStallMs: stallMs },
    );
    const started = Date.now();
    const failure = stuck.virsh.blockCommit('vm', 'vda', '/b/vda.qcow2', () => undefined);
    await expect(failure).rejects.toThrow(BlockJobStalledError);
    await expect(failure).rejects.toThrow(
      /Active Block Commit of disk vda of domain 'vm' made no progress for 0\.15 s \(2 of 9 bytes\), so it was aborted.*repair 'vm'/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(stallMs);
    expect(stuck.commands.at(-1)).toBe('--abort');
    expect(stuck.commands).not.toContain('--pivot');
  });
});
