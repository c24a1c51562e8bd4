import { describe, expect, it } from 'vitest';
import type { ProgramRequest, ProgramResult } from '../../src/host/runner.js';
import { Virsh } from '../../src/host/virsh.js';

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
