import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programRunner, runChecked } from '../../src/host/runner.js';
import type { RestoreResult } from '../../src/ops/restore.js';
import { isolatedEnv, runCli } from '../cli-run.js';
import { testRoot } from '../rig/rig-paths.js';
import { tryVirsh, virsh } from '../rig/virsh.js';
import type { TestRepository } from './repositories.js';
import { localRepository } from './repositories.js';

const env = isolatedEnv();
const qemuNs = 'http://libvirt.org/schemas/domain/qemu/1.0';

async function run(argv: string[], extraEnv: Record<string, string> = {}): Promise<void> {
  await runChecked(programRunner, { argv, env: extraEnv });
}

function dumpXml(name: string, uuid: string, devices: string, extra = ''): string {
  return `<domain type='qemu' xmlns:qemu='${qemuNs}'><name>${name}</name><uuid>${uuid}</uuid>
<memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>${devices}</devices>${extra}</domain>`;
}

const fileDisk = (target: string, file: string) =>
  `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${file}'/><target dev='${target}' bus='virtio'/></disk>`;

/**
 * A snapshot made by another host ('other') of a folder holding config dumps of several hostile
 * "domains", plus a file planted at a path outside that folder. No guest boots: the images are tiny.
 */
describe('restore of a hostile snapshot', () => {
  let repo: TestRepository;
  let root: string;
  let vm: string;
  let planted: string;
  const p = `ubt-h${randomBytes(3).toString('hex')}`;
  const holder = `${p}-holder`;
  const holderUuid = randomUUID();
  const defined = () => tryVirsh('list', '--all', '--name').then((r) => r.stdout);

  beforeAll(async () => {
    repo = await localRepository();
    root = await mkdtemp(join(testRoot, `${p}-`));
    vm = join(root, 'vm');
    planted = join(root, 'planted');
    await mkdir(vm);
    await mkdir(planted);
    const img = (...args: string[]) => run(['qemu-img', 'create', '-q', '-f', 'qcow2', ...args]);
    // good: a two-layer chain, an active layer above it, and a second disk outside the folder.
    await img(join(vm, 'good-base.qcow2'), '1M');
    await img('-F', 'qcow2', '-b', join(vm, 'good-base.qcow2'), join(vm, 'good-top.qcow2'));
    await img('-F', 'qcow2', '-b', join(vm, 'good-top.qcow2'), join(vm, 'good-active.qcow2'));
    await img(join(planted, 'outside.qcow2'), '1M');
    await writeFile(join(planted, 'cron-evil'), '* * * * * root /bin/true\n');
    await writeFile(
      join(vm, `${p}-good-inactive.xml`),
      dumpXml(
        holder,
        holderUuid,
        fileDisk('vda', join(vm, 'good-top.qcow2')) + fileDisk('vdb', join(planted, 'outside.qcow2')),
      ),
    );
    // sym: the layer below the top is a symlink to a file elsewhere.
    await img(join(planted, 'victim.qcow2'), '1M');
    await symlink(join(planted, 'victim.qcow2'), join(vm, 'sym-base.qcow2'));
    await img('-F', 'qcow2', '-b', join(vm, 'sym-base.qcow2'), join(vm, 'sym-top.qcow2'));
    await writeFile(
      join(vm, `${p}-sym-inactive.xml`),
      dumpXml(`${p}-sym`, randomUUID(), fileDisk('vda', join(vm, 'sym-top.qcow2'))),
    );
    // df: a qcow2 whose data lives in an external data file.
    await img('-o', `data_file=${join(planted, 'df.raw')}`, join(vm, 'df-top.qcow2'), '1M');
    await writeFile(
      join(vm, `${p}-df-inactive.xml`),
      dumpXml(`${p}-df`, randomUUID(), fileDisk('vda', join(vm, 'df-top.qcow2'))),
    );
    // dev: a restorable disk beside a host block device the repository holds no copy of.
    await img(join(vm, 'dev-top.qcow2'), '1M');
    await writeFile(
      join(vm, `${p}-dev-inactive.xml`),
      dumpXml(
        `${p}-dev`,
        randomUUID(),
        fileDisk('vda', join(vm, 'dev-top.qcow2')) +
          `<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/sda'/><target dev='vdb' bus='virtio'/></disk>`,
      ),
    );
    // blk: a restorable disk beside passthrough, raw QEMU arguments, a foreign emulator.
    await img(join(vm, 'blk-top.qcow2'), '1M');
    await writeFile(
      join(vm, `${p}-blk-inactive.xml`),
      dumpXml(
        `${p}-blk`,
        randomUUID(),
        fileDisk('vda', join(vm, 'blk-top.qcow2')) +
          `<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/></source></hostdev>` +
          `<filesystem type='mount' accessmode='passthrough'><source dir='/'/><target dir='hostroot'/></filesystem>` +
          `<serial type='file'><source path='/etc/cron.d/evil'/><target port='0'/></serial>`,
        `<qemu:commandline><qemu:arg value='-device'/><qemu:arg value='x'/></qemu:commandline>`,
      ).replace('/usr/bin/qemu-system-x86_64', '/bin/sh'),
    );
    // efi: a variable store outside the folder whose "copy" is a symlink to it, a kernel outside the folder.
    await img(join(vm, 'efi-top.qcow2'), '1M');
    await writeFile(join(planted, 'vars.fd'), 'host variable store');
    await writeFile(join(planted, 'vmlinuz'), 'kernel bytes');
    await symlink(join(planted, 'vars.fd'), join(vm, `${p}-efi.nvram`));
    await writeFile(
      join(vm, `${p}-efi-inactive.xml`),
      dumpXml(`${p}-efi`, randomUUID(), fileDisk('vda', join(vm, 'efi-top.qcow2'))).replace(
        '</type></os>',
        `</type><nvram>${join(planted, 'vars.fd')}</nvram><kernel>${join(planted, 'vmlinuz')}</kernel></os>`,
      ),
    );
    const resticEnv = { RESTIC_REPOSITORY: repo.repository, RESTIC_PASSWORD_FILE: repo.passwordFile };
    await run(['restic', 'init', '-q'], resticEnv);
    await run(
      [
        'restic',
        'backup',
        '-q',
        '--host',
        'other',
        ...['good', 'sym', 'df', 'dev', 'blk', 'efi'].flatMap((d) => ['--tag', `${p}-${d}`]),
        vm,
        planted,
      ],
      resticEnv,
    );
    // The files the snapshot holds are gone from this host: whatever appears again came from restore.
    await rm(vm, { recursive: true });
    await rm(planted, { recursive: true });
    await virsh('define', '--file', await writeDefinition(root, dumpXml(holder, holderUuid, '')));
  });
  afterAll(async () => {
    for (const name of [holder, `${p}-new`]) await tryVirsh('undefine', '--domain', name);
    await rm(root, { recursive: true, force: true });
    await repo.stop();
  });

  const restore = (domain: string, ...args: string[]) =>
    runCli(['restore', `${p}-${domain}`, '--from', 'restic', '--config', repo.configFile, ...args], env);

  it("sees another host's snapshot only with --host, and then only into --to DIR", async () => {
    const own = await restore('good');
    expect(own.exitCode).toBe(1);
    expect(own.stderr).toContain(`from host '${os.hostname()}'`);
    expect(own.stderr).toContain("Hosts with snapshots of it: 'other'");
    const noTo = await restore('good', '--host', 'other');
    expect(noTo.exitCode).toBe(1);
    expect(noTo.stderr).toContain('--to DIR');
    expect(existsSync(vm)).toBe(false);
    expect(existsSync(planted)).toBe(false);
  });

  it('restores only what the dump names, each file inside the target folder, under the name and UUID asked for', async () => {
    const to = join(root, 'to-good');
    const clash = await restore('good', '--host', 'other', '--to', to, '--define');
    expect(clash.exitCode).toBe(1);
    expect(clash.stderr).toContain(`UUID ${holderUuid}, which a defined domain already has`);
    expect(existsSync(to)).toBe(false);
    expect(await defined()).not.toContain(`${p}-good`);

    const out = await restore(
      'good',
      '--host',
      'other',
      '--to',
      to,
      '--as',
      `${p}-new`,
      '--define',
      '--json',
    );
    expect(out.exitCode, out.stderr).toBe(0);
    const result = JSON.parse(out.stdout) as RestoreResult;
    expect((await readdir(to)).sort()).toEqual(
      [
        `${p}-good-inactive.xml`,
        `${p}-new-restored.xml`,
        'good-base.qcow2',
        'good-top.qcow2',
        'outside.qcow2',
      ].sort(),
    );
    for (const name of await readdir(to)) {
      const info = await lstat(join(to, name));
      expect(info.isFile() && info.nlink === 1 && (info.mode & 0o777) === 0o600, name).toBe(true);
      expect(info.uid).toBe(0);
    }
    expect(result.disks).toEqual([
      { target: 'vda', chain: [join(to, 'good-top.qcow2'), join(to, 'good-base.qcow2')], format: 'qcow2' },
      { target: 'vdb', chain: [join(to, 'outside.qcow2')], format: 'qcow2' },
    ]);
    expect(existsSync(vm)).toBe(false);
    expect(existsSync(planted)).toBe(false);
    expect((await virsh('domuuid', '--domain', `${p}-new`)).stdout.trim()).not.toBe(holderUuid);
    expect((await virsh('domuuid', '--domain', holder)).stdout.trim()).toBe(holderUuid);
    expect(await readFile(result.definition, 'utf8')).toContain(`<name>${p}-new</name>`);
  });

  it('refuses a symlinked layer and a qcow2 with an external data file, placing nothing', async () => {
    const symTo = join(root, 'to-sym');
    const sym = await restore('sym', '--host', 'other', '--to', symTo, '--define');
    expect(sym.exitCode).toBe(1);
    expect(sym.stderr).toContain(`layer ${join(vm, 'sym-base.qcow2')} is a symlink entry`);
    const dfTo = join(root, 'to-df');
    const df = await restore('df', '--host', 'other', '--to', dfTo, '--define');
    expect(df.exitCode).toBe(1);
    expect(df.stderr).toContain(`external data file ${join(planted, 'df.raw')}`);
    for (const dir of [symTo, dfTo, vm, planted]) expect(existsSync(dir), dir).toBe(false);
    expect(await defined()).not.toMatch(new RegExp(`${p}-(sym|df)`));
  });

  it("refuses a variable store the backup holds no plain copy of; places a kernel only inside the target, under the domain's name", async () => {
    const to = join(root, 'to-efi');
    const refused = await restore('efi', '--host', 'other', '--to', to, '--define');
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`names the UEFI variable store ${join(planted, 'vars.fd')}`);
    expect(refused.stderr).toContain('--keep-device host-file');
    expect(existsSync(to)).toBe(false);
    expect(existsSync(planted)).toBe(false);

    const kept = await restore('efi', '--host', 'other', '--to', to, '--keep-device', 'host-file', '--json');
    expect(kept.exitCode, kept.stderr).toBe(0);
    const result = JSON.parse(kept.stdout) as RestoreResult;
    expect(result.vmFiles).toEqual([join(to, `${p}-efi.kernel`)]);
    expect(await readFile(join(to, `${p}-efi.kernel`), 'utf8')).toBe('kernel bytes');
    expect((await readdir(to)).sort()).toEqual(
      [`${p}-efi-inactive.xml`, `${p}-efi-restored.xml`, `${p}-efi.kernel`, 'efi-top.qcow2'].sort(),
    );
    const xml = await readFile(result.definition, 'utf8');
    expect(xml).toContain(`<kernel>${join(to, `${p}-efi.kernel`)}</kernel>`);
    expect(existsSync(planted)).toBe(false);
  });

  it('refuses, naming each, the host resources a dump reaches unless --keep-device keeps them', async () => {
    const to = join(root, 'to-blk');
    const refused = await restore('blk', '--host', 'other', '--to', to, '--define');
    expect(refused.exitCode).toBe(1);
    for (const text of [
      "<hostdev mode='subsystem' type='pci' managed='yes'>",
      "<filesystem type='mount' accessmode='passthrough'> dir='/' as dir='hostroot' (--keep-device filesystem)",
      '<qemu:commandline> (--keep-device qemu-commandline)',
      "source path='/etc/cron.d/evil' of a character device (--keep-device host-file)",
      '<emulator>/bin/sh</emulator>',
    ])
      expect(refused.stderr).toContain(text);
    expect(existsSync(to)).toBe(false);
    expect(await defined()).not.toContain(`${p}-blk`);
    const kept = await restore(
      'blk',
      '--host',
      'other',
      '--to',
      to,
      '--keep-device',
      'hostdev,filesystem,host-file,qemu-commandline,emulator',
    );
    expect(kept.exitCode, kept.stderr).toBe(0);
    const xml = await readFile(join(to, `${p}-blk-restored.xml`), 'utf8');
    expect(xml).toContain('<hostdev');
    expect(xml).toContain('<filesystem');
  });

  it('refuses a block-device disk the repository holds no copy of, placing nothing, whatever is kept', async () => {
    const to = join(root, 'to-dev');
    for (const keep of [[], ['--keep-device', 'host-disk']]) {
      const refused = await restore('dev', '--host', 'other', '--to', to, ...keep);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain('disk vdb: the repository holds no copy of the block device /dev/sda');
      expect(existsSync(to)).toBe(false);
    }
    expect(await defined()).not.toContain(`${p}-dev`);
  });
});

async function writeDefinition(dir: string, xml: string): Promise<string> {
  const file = join(dir, 'holder.xml');
  await writeFile(file, xml);
  return file;
}
