import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDomainXml } from '../../src/host/domainxml.js';
import { programRunner, runChecked } from '../../src/host/runner.js';
import type { RestoreResult } from '../../src/ops/restore.js';
import type { RunResult } from '../../src/ops/run.js';
import { isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { waitForSeq } from '../rig/domain.js';
import { domainXml } from '../rig/domain-xml.js';
import { LoopDevice } from '../rig/loop-device.js';
import { guestDir, testRoot } from '../rig/rig-paths.js';
import { useTestDomains } from '../rig/test-domains.js';
import { virsh } from '../rig/virsh.js';
import { chainOf, expectDataIntact, layerPaths, shapeOf } from './chain-json.js';
import { localRepository } from './repositories.js';

const domains = useTestDomains();
const env = isolatedEnv();
let config = '';
/** The environment with the config file that sets this domain's overlay-dir. */
const configured = () => ({ ...env, UNIFI_BACKUP_CONFIG: config });

/** vda's kind of source and source in the live and the persistent definition. */
async function vdaSources(name: string): Promise<{ sourceType: string; source: string | undefined }[]> {
  const live = (await virsh('dumpxml', '--domain', name)).stdout;
  const inactive = (await virsh('dumpxml', '--inactive', '--domain', name)).stdout;
  return [live, inactive].map((xml) => {
    const disk = parseDomainXml(xml).disks[0];
    return { sourceType: disk?.sourceType ?? '', source: disk?.source };
  });
}

describe('a block-device disk (a logical volume)', () => {
  let device: LoopDevice;
  let domain: TestDomain;
  let overlays: string;

  /** Defines (never starts) a second domain whose vda is the same device, named by its node. */
  async function defineOther(): Promise<string> {
    const name = `ubt-b-${basename(overlays).slice(-6)}`;
    const xmlFile = join(overlays, `${name}.xml`);
    await writeFile(
      xmlFile,
      domainXml({
        name,
        kernel: '/nonexistent/vmlinuz',
        initrd: '/nonexistent/initrd',
        cmdline: '',
        consoleLog: join(overlays, `${name}.log`),
        disks: [{ target: 'vda', path: device.node, format: 'raw', block: true }],
      }),
    );
    await virsh('define', '--file', xmlFile);
    return name;
  }

  beforeAll(async () => {
    device = await LoopDevice.create(32);
    domain = await domains.create({ blockDevice: device.path });
    overlays = await mkdtemp(join(testRoot, 'overlays-'));
    // QEMU (not root) opens the overlays: the folder must let it through, as a user's must.
    await chmod(overlays, 0o755);
    // The domain's own setting: the global one names a folder that does not exist.
    config = join(overlays, 'config.yaml');
    await writeFile(
      config,
      `overlay-dir: /nonexistent/overlays\ndomains:\n  ${JSON.stringify(domain.name)}:\n    overlay-dir: ${overlays}\n`,
    );
  });
  afterAll(async () => {
    await domain.cleanup();
    await device.remove();
    await rm(overlays, { recursive: true, force: true });
  });

  it('without overlay-dir: refused, naming the disk and the setting; nothing changes', async () => {
    const result = await runCli(['backup', 'incr', domain.name], env);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(
      `disk vda of domain '${domain.name}' is the block device ${device.path}: its overlays need a folder`,
    );
    expect(result.stderr).toContain('Set overlay-dir in the config file');
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({ vda: ['base'] });
    expect(await vdaSources(domain.name)).toEqual([
      { sourceType: 'block', source: device.path },
      { sourceType: 'block', source: device.path },
    ]);
  });

  it('running: incr, diff, full and disable keep the device as the base and the guest data intact', async () => {
    await waitForSeq(domain, 'vda', 3);
    await runCliOk(['backup', 'incr', domain.name], configured());
    let chain = await chainOf(domain.name, env);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'base'] });
    expect(chain.disks[0]?.layers[1]?.path).toBe(device.path);
    const top = chain.disks[0]?.layers[0]?.path ?? '';
    expect(dirname(top)).toBe(overlays);
    expect(basename(top)).toMatch(/^data\.incr-\d{8}-\d{6}$/);
    // The frozen device, then the config dumps, which live in the overlay folder too, then the
    // guest's direct-kernel files.
    const files = (await runCliOk(['files', domain.name], env)).stdout.trim().split('\n');
    expect(files).toEqual([
      device.path,
      join(overlays, `${domain.name}.xml`),
      join(overlays, `${domain.name}-inactive.xml`),
      join(overlays, `${domain.name}-migratable.xml`),
      join(guestDir, 'vmlinuz'),
      join(guestDir, 'initrd.img'),
    ]);
    const seqFrozen = await expectDataIntact(device.path, 3);

    await waitForSeq(domain, 'vda', seqFrozen + 2);
    await runCliOk(['backup', 'incr', domain.name], configured());
    await runCliOk(['backup', 'diff', domain.name], configured());
    chain = await chainOf(domain.name, env);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'diff', 'base'] });
    const diff = chain.disks[0]?.layers[1]?.path ?? '';
    expect(dirname(diff)).toBe(overlays);
    const seqDiff = await expectDataIntact(diff, seqFrozen + 2);
    // Nothing merged is left in the folder: the device, two layers and the config dumps.
    expect((await readdir(overlays)).filter((f) => f.startsWith('data.'))).toHaveLength(2);

    await waitForSeq(domain, 'vda', seqDiff + 2);
    await runCliOk(['backup', 'full', domain.name], configured());
    chain = await chainOf(domain.name, env);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'base'] });
    expect(chain.disks[0]?.layers[1]?.path).toBe(device.path);
    const seqFull = await expectDataIntact(device.path, seqDiff + 2);

    await waitForSeq(domain, 'vda', seqFull + 2);
    await runCliOk(['backup', 'disable', '--yes', domain.name], env);
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({ vda: ['base'] });
    expect(await vdaSources(domain.name)).toEqual([
      { sourceType: 'block', source: device.path },
      { sourceType: 'block', source: device.path },
    ]);
    expect((await readdir(overlays)).filter((f) => f.startsWith('data.'))).toEqual([]);
    await domain.shutdown();
    await expectDataIntact(device.path, seqFull + 2);
  });

  it('shut off: incr, diff, full and disable redefine between overlay file and device; the domain boots on', async () => {
    const seqOff = await expectDataIntact(device.path, 3);
    await runCliOk(['backup', 'incr', domain.name, '--overlay-dir', overlays], env);
    expect(await vdaSources(domain.name)).toEqual([
      { sourceType: 'file', source: (await chainOf(domain.name, env)).disks[0]?.layers[0]?.path },
      { sourceType: 'file', source: (await chainOf(domain.name, env)).disks[0]?.layers[0]?.path },
    ]);
    await runCliOk(['backup', 'diff', domain.name, '--overlay-dir', overlays], env);
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({ vda: ['incr', 'diff', 'base'] });
    await runCliOk(['backup', 'full', domain.name, '--overlay-dir', overlays], env);
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({ vda: ['incr', 'base'] });
    await runCliOk(['backup', 'disable', '--yes', domain.name], env);
    expect(await vdaSources(domain.name)).toEqual([
      { sourceType: 'block', source: device.path },
      { sourceType: 'block', source: device.path },
    ]);
    expect(await expectDataIntact(device.path, seqOff)).toBe(seqOff);

    await domain.start();
    await domain.waitForAgent();
    await waitForSeq(domain, 'vda', seqOff + 2);
  });

  it('run: overlays as files, the device through --stdin only when no copy of its content is there', async () => {
    const repo = await localRepository();
    try {
      const run = async (level: string): Promise<RunResult> =>
        JSON.parse(
          (
            await runCliOk(
              [
                '--json',
                'run',
                level,
                domain.name,
                '--config',
                repo.configFile,
                '--overlay-dir',
                overlays,
                '--init',
              ],
              env,
            )
          ).stdout,
        ) as RunResult;
      const restic = (...args: string[]) =>
        runChecked(programRunner, {
          argv: ['restic', ...args],
          env: { RESTIC_REPOSITORY: repo.repository, RESTIC_PASSWORD_FILE: repo.passwordFile },
        });
      /** The device copy of a snapshot, restored into a file and checked. */
      const checkCopy = async (snapshot: string, minRecords: number): Promise<number> => {
        const into = await mkdtemp(join(testRoot, 'copy-'));
        try {
          await restic('restore', snapshot, '--target', into);
          return await expectDataIntact(join(into, `${domain.name}.vda.raw`), minRecords);
        } finally {
          await rm(into, { recursive: true, force: true });
        }
      };

      await waitForSeq(domain, 'vda', 3);
      const first = await run('incr');
      expect(first.files).not.toContain(device.path);
      expect(first.files.some((f) => dirname(f) === overlays)).toBe(true);
      expect(first.devices).toMatchObject([{ target: 'vda', device: device.path, read: true }]);
      const seqFirst = await checkCopy(first.devices?.[0]?.snapshot ?? '', 3);

      await waitForSeq(domain, 'vda', seqFirst + 2);
      const second = await run('incr');
      expect(second.devices).toMatchObject([{ read: false, snapshot: first.devices?.[0]?.snapshot }]);

      await waitForSeq(domain, 'vda', seqFirst + 4);
      const full = await run('full');
      expect(full.devices).toMatchObject([{ read: true }]);
      expect(full.devices?.[0]?.snapshot).not.toBe(first.devices?.[0]?.snapshot);
      await checkCopy(full.devices?.[0]?.snapshot ?? '', seqFirst + 4);

      // restore puts each device back from the copy its snapshot needs: the full's (its top frozen
      // layer is the device) into a sparse raw file, the second incr's (an overlay over the device)
      // onto a device named with --device-to, never onto one a domain uses.
      const restore = (snapshot: string, to: string, ...extra: string[]) =>
        runCli(
          [
            '--json',
            'restore',
            domain.name,
            '--from',
            `restic:${snapshot}`,
            '--to',
            to,
            '--config',
            repo.configFile,
            '--keep-device',
            'host-file',
            ...extra,
          ],
          env,
        );
      const restored = (result: Awaited<ReturnType<typeof runCli>>): string[] => {
        expect(result.exitCode, result.stderr).toBe(0);
        return [...((JSON.parse(result.stdout) as RestoreResult).disks[0]?.chain ?? [])];
      };
      const to = join(testRoot, `restore-${basename(overlays)}`);
      const target = await LoopDevice.create(40);
      try {
        const fileChain = restored(await restore(full.restic?.snapshotId ?? '', join(to, 'file')));
        expect(fileChain).toEqual([join(to, 'file', `${domain.name}.vda.raw`)]);
        expect((await stat(fileChain[0] ?? '')).blocks * 512).toBeLessThan(32 * 1024 * 1024);
        await expectDataIntact(fileChain[0] ?? '', seqFirst + 4);

        const inUse = await restore(
          second.restic?.snapshotId ?? '',
          join(to, 'in-use'),
          '--device-to',
          `vda=${device.path}`,
        );
        expect(inUse.exitCode).toBe(1);
        expect(inUse.stderr).toContain(
          `--device-to vda=${device.path}: the device is in use by '${domain.name}'`,
        );
        expect(await readdir(to)).toEqual(['file']);

        const deviceChain = restored(
          await restore(
            second.restic?.snapshotId ?? '',
            join(to, 'device'),
            '--device-to',
            `vda=${target.path}`,
          ),
        );
        expect(deviceChain.slice(1)).toEqual([target.path]);
        expect(dirname(deviceChain[0] ?? '')).toBe(join(to, 'device'));
        await expectDataIntact(deviceChain[0] ?? '', seqFirst + 2);
      } finally {
        await target.remove();
        await rm(to, { recursive: true, force: true });
      }

      // The files snapshots are the domain's (parent, retention); device copies carry tags of their own.
      const { stdout } = await restic('snapshots', '--json', '--tag', domain.name);
      expect((JSON.parse(stdout) as unknown[]).length).toBe(3);
    } finally {
      await repo.stop();
    }
  });

  it('sync and maintenance refuse the disk by name and change nothing', async () => {
    const before = layerPaths(await chainOf(domain.name, env));
    const refusals: [string[], string][] = [
      [
        ['sync', 'full', domain.name, '--target', join(overlays, 'replica')],
        'sync cannot take block-device disks yet',
      ],
      [['maintenance', 'enter', domain.name], 'maintenance cannot take block-device disks yet'],
    ];
    for (const [args, text] of refusals) {
      const result = await runCli(args, env);
      expect(result.exitCode, result.stderr).toBe(1);
      expect(result.stderr).toContain(
        `disk vda of domain '${domain.name}' is backed by the block device ${device.path}`,
      );
      expect(result.stderr).toContain(text);
    }
    expect(layerPaths(await chainOf(domain.name, env))).toEqual(before);
    // The verbs that only read take the disk as it is.
    const verify = await runCli(['verify', domain.name], env);
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
    const dryRun = await runCliOk(['--dry-run', 'backup', 'full', domain.name], configured());
    expect(dryRun.stdout).toContain(`→ ${device.path}`);
    expect(layerPaths(await chainOf(domain.name, env))).toEqual(before);
  });

  it('another domain naming the same device by its node is a user of the base: full refuses to commit', async () => {
    const other = await defineOther();
    try {
      const result = await runCli(['backup', 'full', domain.name], configured());
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`its base ${device.path} is shared with '${other}'`);
    } finally {
      await virsh('undefine', '--domain', other);
    }
    await domain.shutdown();
    await expectDataIntact(device.path, 3);
  });
});
