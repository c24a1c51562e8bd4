import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programRunner, runChecked } from '../../src/host/runner.js';
import type { MountResult } from '../../src/ops/mount.js';
import type { RunResult } from '../../src/ops/run.js';
import { execa } from 'execa';
import { cliPath, isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { checkImage } from '../rig/image.js';
import { judgeRecords } from '../rig/records.js';
import { guestDir, testRoot } from '../rig/rig-paths.js';
import { makePartitionedQcow2 } from '../rig/test-disk.js';
import { useTestDomains } from '../rig/test-domains.js';
import type { TestRepository } from './repositories.js';
import { localRepository } from './repositories.js';

const domains = useTestDomains();
const env = isolatedEnv();
const stateDir = env.UNIFI_BACKUP_STATE_DIR ?? '';

/** The files the guest writes before the first backup; after it, one changes, one goes, one comes. */
const before = {
  'keep.txt': randomBytes(3000).toString('base64'),
  'change.txt': randomBytes(2000).toString('base64'),
  'gone.txt': randomBytes(1000).toString('base64'),
};
const changed = randomBytes(2500).toString('base64');
const added = randomBytes(500).toString('base64');

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Each frozen layer's identity and checksum (what `files` hands restic, config dumps left out). */
const guestFolders = new Set([guestDir, realpathSync(guestDir)]);

async function frozenLayers(domain: string): Promise<Map<string, string>> {
  const files = (await runCliOk(['files', domain], env)).stdout
    .split('\n')
    // Only the disk's layers: not the config dumps, not the guest's direct-kernel files.
    .filter((f) => f !== '' && !f.endsWith('.xml') && !guestFolders.has(dirname(f)));
  const layers = new Map<string, string>();
  for (const file of files) {
    const info = await stat(file);
    layers.set(file, `${info.dev}:${info.ino} ${await sha256(file)}`);
  }
  return layers;
}

let scratch = '';
async function emptyFolder(): Promise<string> {
  return mkdtemp(join(scratch, 'mp-'));
}

/** Nothing mount made is left: no daemon, no loop device over its files, no mount, no work folder. */
async function expectNothingLeft(mountpoint: string): Promise<void> {
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  expect(mounts).not.toContain(` ${mountpoint} `);
  expect(mounts).not.toContain(stateDir);
  const loops = (
    await runChecked(programRunner, { argv: ['losetup', '--list', '--noheadings', '-O', 'BACK-FILE'] })
  ).stdout;
  expect(loops).not.toContain(stateDir);
  const daemons: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(stateDir)) daemons.push(cmdline.replaceAll('\0', ' '));
  }
  expect(daemons).toEqual([]);
  expect(await readdir(join(stateDir, 'mounts'))).toEqual([]);
  expect(await readdir(mountpoint)).toEqual([]);
}

async function mount(args: readonly string[]): Promise<MountResult> {
  return JSON.parse((await runCliOk(['mount', ...args, '--json'], env)).stdout) as MountResult;
}

describe('mount', () => {
  let repo: TestRepository;
  let domain: TestDomain;
  let first = '';

  beforeAll(async () => {
    await mkdir(testRoot, { recursive: true });
    scratch = await mkdtemp(join(testRoot, 'mount-'));
    repo = await localRepository();
    domain = await domains.create({ disks: 1, diskSizeMiB: 32 });
    for (const [file, content] of Object.entries(before)) await domain.writeFile('vda', file, content);
    await sleep(1000);
    const run = async (init: boolean) =>
      JSON.parse(
        (
          await runCliOk(
            ['run', 'incr', domain.name, '--config', repo.configFile, '--json', ...(init ? ['--init'] : [])],
            env,
          )
        ).stdout,
      ) as RunResult;
    first = (await run(true)).restic?.snapshotId ?? '';
    await domain.writeFile('vda', 'change.txt', changed);
    await domain.writeFile('vda', 'new.txt', added);
    await domain.guestExec(['rm', '/mnt/vda/gone.txt']);
    await domain.guestExec(['sync']);
    await run(false);
  });
  afterAll(async () => {
    await repo.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('refuses to run as another user than root, before anything is read', async () => {
    const result = await execa(
      'setpriv',
      [
        '--reuid',
        '65534',
        '--regid',
        '65534',
        '--clear-groups',
        'node',
        cliPath,
        'mount',
        domain.name,
        scratch,
      ],
      { reject: false, env: { ...env, NO_COLOR: '1' } },
    );
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('mount needs root');
  });

  it('mounts the earlier restic snapshot read-only, byte for byte, and unmount leaves nothing behind', async () => {
    const mp = await emptyFolder();
    const result = await mount([domain.name, '--from', `restic:${first}`, '--config', repo.configFile, mp]);
    expect(result.filesystems).toEqual([
      expect.objectContaining({ name: 'disk', type: 'ext4', folder: join(mp, 'disk') }),
    ]);
    const root = join(mp, 'disk');
    for (const [file, content] of Object.entries(before))
      expect(await readFile(join(root, file), 'utf8')).toBe(content);
    await expect(stat(join(root, 'new.txt'))).rejects.toThrow();
    const records = judgeRecords(await readFile(join(root, 'records.log'), 'utf8'));
    expect(records.problems).toEqual([]);
    expect(records.count).toBeGreaterThan(0);
    await expect(writeFile(join(root, 'x'), 'x')).rejects.toThrow(/EROFS|read-only/i);
    await expect(unlink(join(root, 'keep.txt'))).rejects.toThrow(/EROFS|read-only/i);
    const busy = await runCli(
      ['mount', domain.name, '--from', `restic:${first}`, '--config', repo.configFile, mp],
      env,
    );
    expect(busy.exitCode).toBe(1);
    expect(busy.stderr).toContain(`${mp} is in use: disk vda of '${domain.name}' is mounted there`);
    await runCliOk(['unmount', mp], env);
    await expectNothingLeft(mp);
  });

  it("mounts the live domain's frozen layers (the state at the last incr) without changing a layer", async () => {
    const layers = await frozenLayers(domain.name);
    const mp = await emptyFolder();
    await mount([domain.name, mp]);
    const root = join(mp, 'disk');
    expect(await readFile(join(root, 'keep.txt'), 'utf8')).toBe(before['keep.txt']);
    expect(await readFile(join(root, 'change.txt'), 'utf8')).toBe(changed);
    expect(await readFile(join(root, 'new.txt'), 'utf8')).toBe(added);
    await expect(stat(join(root, 'gone.txt'))).rejects.toThrow();
    expect(judgeRecords(await readFile(join(root, 'records.log'), 'utf8')).problems).toEqual([]);
    await runCliOk(['unmount', mp], env);
    await expectNothingLeft(mp);
    expect(await frozenLayers(domain.name)).toEqual(layers);
    const top = [...layers.keys()].at(-1) ?? '';
    const check = await checkImage(top);
    expect(check.fsckClean).toBe(true);
    expect(check.records.ok).toBe(true);
  });

  it('mounts a folder restore, and refuses a disk the backup does not have or a folder that is not empty', async () => {
    const folder = join(scratch, 'restored');
    await runCliOk(
      ['restore', domain.name, '--from', `restic:${first}`, '--to', folder, '--config', repo.configFile],
      env,
    );
    const sums = new Map<string, string>();
    for (const f of await readdir(folder)) sums.set(f, await sha256(join(folder, f)));
    const missing = await runCli(
      ['mount', domain.name, '--from', folder, '--disk', 'vdz', await emptyFolder()],
      env,
    );
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/has no disk vdz; its disks: vda\. Nothing was mounted/);
    const full = await emptyFolder();
    await writeFile(join(full, 'mine'), 'x');
    const notEmpty = await runCli(['mount', domain.name, '--from', folder, full], env);
    expect(notEmpty.exitCode).toBe(1);
    expect(notEmpty.stderr).toContain(`${full} is not empty`);
    const mp = await emptyFolder();
    await mount([domain.name, '--from', folder, '--disk', 'vda', mp]);
    for (const [file, content] of Object.entries(before))
      expect(await readFile(join(mp, 'disk', file), 'utf8')).toBe(content);
    await runCliOk(['unmount', mp], env);
    await expectNothingLeft(mp);
    for (const [f, sum] of sums) expect(await sha256(join(folder, f))).toBe(sum);
  });

  it('mounts each partition of a partitioned disk by number and label; repair takes down a mount killed midway', async () => {
    const part = await domains.create({ disks: 1, start: false, writer: false });
    const content = join(scratch, 'content');
    await mkdir(content);
    await writeFile(join(content, 'hello.txt'), before['keep.txt']);
    const disk = part.disks[0]?.path ?? '';
    await rm(disk);
    await makePartitionedQcow2(disk, 'alpha', content);
    await runCliOk(['backup', 'incr', part.name], env);
    const layers = await frozenLayers(part.name);
    const listed = await mount([part.name, '--list']);
    expect(listed.filesystems.map((f) => [f.name, f.type, f.skipped !== undefined])).toEqual([
      ['1-alpha', 'ext4', false],
      ['2', 'ext4', false],
      ['3', undefined, true],
    ]);
    const mp = await emptyFolder();
    const result = await mount([part.name, mp]);
    expect(result.filesystems.map((f) => f.folder)).toEqual([join(mp, '1-alpha'), join(mp, '2'), undefined]);
    expect(await readFile(join(mp, '1-alpha', 'hello.txt'), 'utf8')).toBe(before['keep.txt']);
    expect(await readdir(join(mp, '2'))).toEqual(['lost+found']);
    await runCliOk(['unmount', mp], env);
    await expectNothingLeft(mp);

    const killed = await runCli(['mount', part.name, mp], {
      ...env,
      UNIFI_BACKUP_FAULT_KILL_AFTER_STEP: '2',
    });
    expect(killed.exitCode).not.toBe(0);
    expect((await readFile('/proc/self/mountinfo', 'utf8')).includes(` ${mp} `)).toBe(true);
    const repaired = await runCliOk(['repair', part.name], env);
    expect(repaired.stdout).toContain(`took down the mount of disk`);
    await expectNothingLeft(mp);
    expect(await frozenLayers(part.name)).toEqual(layers);
  });
});
