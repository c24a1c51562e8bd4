import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreResult } from '../../src/ops/restore.js';
import type { RunResult } from '../../src/ops/run.js';
import { isolatedEnv, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { guestDir, testRoot } from '../rig/rig-paths.js';
import { useTestDomains } from '../rig/test-domains.js';
import { virsh } from '../rig/virsh.js';
import { waitForSeq } from '../rig/domain.js';
import { expectDataIntact } from './chain-json.js';
import type { TestRepository } from './repositories.js';
import { localRepository } from './repositories.js';
import { cleanupRestored, restoredDomain } from './restored.js';

const domains = useTestDomains();
const env = isolatedEnv();

const tpmState = (uuid: string) => `/var/lib/libvirt/swtpm/${uuid}/tpm2/tpm2-00.permall`;

async function uuidOf(name: string): Promise<string> {
  return (await virsh('domuuid', '--domain', name)).stdout.trim();
}

describe('a UEFI domain with a TPM, booted direct-kernel', () => {
  let repo: TestRepository;
  let domain: TestDomain;
  let vars: string;

  beforeAll(async () => {
    repo = await localRepository();
    const started = Date.now();
    domain = await domains.create({ uefi: true, tpm: true });
    // Measured, not asserted: OVMF under TCG before the direct-kernel boot.
    console.log(
      `UEFI + TPM domain up (guest agent answers) after ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    vars = join(domain.dir, `${domain.name}_VARS.fd`);
  });
  afterAll(async () => {
    await cleanupRestored();
    await repo.stop();
  });

  it('run backs up copies of the variable store and TPM state and the kernel files; restore --as puts the backed-up bytes back under the new name and UUID, and it boots', async () => {
    const name = domain.name;
    const uuid = await uuidOf(name);
    expect(existsSync(tpmState(uuid))).toBe(true);
    const seqBacked = await waitForSeq(domain, 'vda', 3);

    const run = JSON.parse(
      (await runCliOk(['--json', 'run', 'incr', name, '--config', repo.configFile, '--init'], env)).stdout,
    ) as RunResult;
    expect(run.prepare.notes).toContain('vCPUs paused while the copies were read');
    expect(await domain.state()).toBe('running');
    const nvramCopy = join(domain.dir, `${name}.nvram`);
    const tpmCopy = join(domain.dir, `${name}.swtpm.tpm2.tpm2-00.permall`);
    const files = (await runCliOk(['files', name], env)).stdout.trim().split('\n');
    expect(files.slice(-4)).toEqual([
      nvramCopy,
      tpmCopy,
      join(guestDir, 'vmlinuz'),
      join(guestDir, 'initrd.img'),
    ]);
    expect(files).not.toContain(vars);
    const backedUpVars = await readFile(nvramCopy);
    const backedUpTpm = await readFile(tpmCopy);
    // The boot is over: nothing writes the variable store or the TPM state while the guest idles.
    expect(backedUpVars.equals(await readFile(vars))).toBe(true);
    expect(backedUpTpm.equals(await readFile(tpmState(uuid)))).toBe(true);

    // The variable store changes after the backup. Written here, with the domain shut off, into the
    // store's spare area (what OVMF would write on its next boot, without a boot the test would wait for).
    await domain.destroy();
    const handle = await open(vars, 'r+');
    try {
      await handle.write(
        Buffer.from('changed after the backup'),
        0,
        undefined,
        (await handle.stat()).size - 64,
      );
    } finally {
      await handle.close();
    }
    expect((await readFile(vars)).equals(backedUpVars)).toBe(false);

    const newName = `ubt-r-${randomBytes(3).toString('hex')}`;
    const to = join(testRoot, newName);
    const out = await runCliOk(
      [
        '--json',
        'restore',
        name,
        '--from',
        'restic',
        '--to',
        to,
        '--as',
        newName,
        '--define',
        '--config',
        repo.configFile,
      ],
      env,
    );
    const result = JSON.parse(out.stdout) as RestoreResult;
    const restored = restoredDomain(result);
    const newUuid = await uuidOf(newName);
    expect(newUuid).not.toBe(uuid);
    expect([...result.vmFiles].sort()).toEqual(
      [
        join(to, `${newName}_VARS.fd`),
        join(to, `${newName}.kernel`),
        join(to, `${newName}.initrd`),
        tpmState(newUuid),
      ].sort(),
    );
    expect((await readFile(join(to, `${newName}_VARS.fd`))).equals(backedUpVars)).toBe(true);
    expect((await readFile(tpmState(newUuid))).equals(backedUpTpm)).toBe(true);
    expect(
      (await readFile(join(to, `${newName}.kernel`))).equals(await readFile(join(guestDir, 'vmlinuz'))),
    ).toBe(true);
    const definition = (await virsh('dumpxml', '--inactive', '--domain', newName)).stdout;
    expect(definition).toContain(`<nvram>${join(to, `${newName}_VARS.fd`)}</nvram>`);
    expect(definition).toContain(`<kernel>${join(to, `${newName}.kernel`)}</kernel>`);
    expect(definition).toContain(`<initrd>${join(to, `${newName}.initrd`)}</initrd>`);
    expect(readdirSync(to).filter((f) => f.endsWith('.nvram') || f.includes('.swtpm.'))).toEqual([]);

    const top = result.disks[0]?.chain[0] ?? '';
    expect(await expectDataIntact(top, 3)).toBeGreaterThanOrEqual(seqBacked);
    await restored.start();
    await restored.waitForAgent(120_000);
    expect(await restored.state()).toBe('running');
    await restored.shutdown(30_000);
    expect(await expectDataIntact(top, 3)).toBeGreaterThanOrEqual(seqBacked);
  });

  it('shut off: backup copies the variable store as it is now, with the chain and data intact', async () => {
    expect(await domain.state()).toBe('shut off');
    await runCliOk(['backup', 'incr', domain.name], env);
    const copy = await readFile(join(domain.dir, `${domain.name}.nvram`));
    expect(copy.equals(await readFile(vars))).toBe(true);
    const chain = JSON.parse((await runCliOk(['--json', 'chain', domain.name], env)).stdout) as {
      disks: { layers: { path: string }[] }[];
    };
    await expectDataIntact(chain.disks[0]?.layers[0]?.path ?? '', 3);
  });
});
