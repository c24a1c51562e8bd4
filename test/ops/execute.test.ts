import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/chain/plan.js';
import { UserError } from '../../src/errors.js';
import { createHost } from '../../src/host/host.js';
import type { Runner } from '../../src/host/runner.js';
import { journalFile } from '../../src/journal/journal.js';
import type { OpsContext } from '../../src/ops/context.js';
import { executePlan } from '../../src/ops/execute.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const plan: Plan = {
  domain: 'web',
  verb: 'full',
  steps: [
    {
      kind: 'block-commit',
      merge: { target: 'vda', top: '/pool/web/vda.incr-1', base: '/pool/web/vda.qcow2', baseFormat: 'qcow2' },
    },
  ],
  tops: new Map([['vda', '/pool/web/vda.qcow2']]),
  notes: [],
};

/** virsh whose blockcommit loses libvirtd, with the job left in QEMU (or not) as `jobInfo` says. */
function context(jobInfo: string): OpsContext {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'ub-execute-'));
  dirs.push(stateDir);
  const runner: Runner = ({ argv }) =>
    Promise.resolve(
      argv.includes('blockcommit')
        ? {
            argv,
            exitCode: 1,
            stdout: '',
            stderr: 'error: Disconnected from qemu:///system due to end of file',
          }
        : { argv, exitCode: 0, stdout: argv.includes('blockjob') ? jobInfo : '', stderr: '' },
    );
  return {
    host: createHost('test:///default', runner),
    lockDir: stateDir,
    stateDir,
    dryRun: false,
    log: () => undefined,
    progress: () => undefined,
    now: () => new Date(0),
  };
}

describe('executePlan, a first step that fails', () => {
  it('keeps the journal when its block job still runs, and says to run repair', async () => {
    const ctx = context(' type=Active Block Commit\n bandwidth=0\n cur=10\n end=100\n');
    const failed = executePlan(ctx, plan);
    await expect(failed).rejects.toThrow(UserError);
    await expect(failed).rejects.toThrow(/domain 'web'.*run 'unifi-backup repair web'/s);
    expect(existsSync(journalFile(ctx.stateDir, 'web'))).toBe(true);
  });

  it('leaves no journal when no job was left: nothing changed', async () => {
    const ctx = context('No current block job for vda\n');
    await expect(executePlan(ctx, plan)).rejects.toThrow(/Disconnected/);
    expect(existsSync(journalFile(ctx.stateDir, 'web'))).toBe(false);
  });
});
