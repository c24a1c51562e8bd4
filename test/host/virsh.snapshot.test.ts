import { describe, expect, it } from 'vitest';
import type { ProgramRequest, ProgramResult } from '../../src/host/runner.js';
import { nextPollDelay, Virsh } from '../../src/host/virsh.js';

/** A scripted virsh: `snapshot-create` fails as given, `domfsthaw` answers as given. */
function scripted(snapshot: Partial<ProgramResult>, thaw: Partial<ProgramResult>) {
  const commands: string[] = [];
  const runner = (request: ProgramRequest): Promise<ProgramResult> => {
    const command = request.argv[4] ?? '';
    commands.push(command);
    const answer = command === 'snapshot-create' ? snapshot : command === 'domfsthaw' ? thaw : {};
    return Promise.resolve({ argv: request.argv, exitCode: 0, stdout: '', stderr: '', ...answer });
  };
  return { virsh: new Virsh(runner, 'qemu:///system'), commands };
}

const agentGone = {
  exitCode: 1,
  stderr: 'error: Guest agent is not responding: QEMU guest agent is not connected\n',
};

describe('a quiesced snapshot that fails', () => {
  it('thaws the guest filesystems before the failure is reported', async () => {
    const { virsh, commands } = scripted(agentGone, {});
    await expect(
      virsh.snapshotCreate('vm', '<domainsnapshot/>', { quiesce: true, memory: false }),
    ).rejects.toThrow(/^snapshot of domain 'vm' failed: error: Guest agent is not responding/);
    expect(commands).toEqual(['snapshot-create', 'domfsthaw']);
  });

  it('says so, and what to run, when thawing fails too', async () => {
    const { virsh } = scripted(agentGone, agentGone);
    await expect(
      virsh.snapshotCreate('vm', '<domainsnapshot/>', { quiesce: true, memory: false }),
    ).rejects.toThrow(
      /Thawing its filesystems failed too .*run: virsh domfsthaw --domain 'vm'; then: unifi-backup repair 'vm'/,
    );
  });

  it('without --quiesce there is nothing to thaw', async () => {
    const { virsh, commands } = scripted(agentGone, {});
    await expect(
      virsh.snapshotCreate('vm', '<domainsnapshot/>', { quiesce: false, memory: false }),
    ).rejects.toThrow();
    expect(commands).toEqual(['snapshot-create']);
  });
});

describe('a snapshot prepared ahead (prepareSnapshot)', () => {
  it('is run the usual way, from a file, when its FIFO cannot be made', async () => {
    const { virsh, commands } = scripted({}, {});
    // The scripted mkfifo succeeds without making one: the FIFO cannot be opened.
    virsh.prepareSnapshot('vm', { quiesce: false, memory: false });
    await virsh.snapshotCreate('vm', '<domainsnapshot/>', { quiesce: false, memory: false });
    expect(commands).toEqual(['', 'snapshot-create']);
  });

  it('with other flags, or discarded, its run is withdrawn and the snapshot runs on its own', async () => {
    const requests: ProgramRequest[] = [];
    const runner = (request: ProgramRequest): Promise<ProgramResult> => {
      requests.push(request);
      return Promise.resolve({ argv: request.argv, exitCode: 0, stdout: '', stderr: '' });
    };
    const virsh = new Virsh(runner, 'qemu:///system');
    virsh.prepareSnapshot('vm', { quiesce: true, memory: false });
    await virsh.snapshotCreate('vm', '<domainsnapshot/>', { quiesce: false, memory: false });
    virsh.prepareSnapshot('vm', { quiesce: false, memory: false });
    virsh.discardSnapshot('vm');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const snapshots = requests.filter((r) => r.argv.includes('snapshot-create'));
    expect(snapshots.map((r) => r.argv.includes('--quiesce'))).toEqual([false]);
  });
});

describe('nextPollDelay: a block job is polled when its rate says it ends', () => {
  const at = (cur: number, end: number, time: number) => ({ cur, end, at: time });
  it('backs off to 100 ms while the end is far', () => {
    expect(nextPollDelay(undefined, at(0, 100, 0), 20)).toBe(30);
    expect(nextPollDelay(at(0, 1000, 0), at(10, 1000, 100), 100)).toBe(100);
  });
  it('asks when the job should end, not sooner than 10 ms', () => {
    expect(nextPollDelay(at(0, 1000, 0), at(900, 1000, 90), 100)).toBe(10);
    expect(nextPollDelay(at(0, 1000, 0), at(500, 1000, 100), 100)).toBe(100);
    expect(nextPollDelay(at(0, 1000, 0), at(700, 1000, 100), 100)).toBe(43);
  });
  it('all copied: once more after 10 ms, then backing off; no progress or no size: backing off', () => {
    expect(nextPollDelay(at(900, 1000, 0), at(1000, 1000, 50), 100)).toBe(10);
    expect(nextPollDelay(at(1000, 1000, 0), at(1000, 1000, 10), 10)).toBe(15);
    expect(nextPollDelay(at(500, 1000, 0), at(500, 1000, 100), 40)).toBe(60);
    expect(nextPollDelay(at(0, 0, 0), at(0, 0, 100), 40)).toBe(60);
  });
});
