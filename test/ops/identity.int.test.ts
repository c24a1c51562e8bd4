import { waitForSeq } from '../rig/domain.js';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programRunner, runChecked } from '../../src/host/runner.js';
import { runCli, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { domainXml } from '../rig/domain-xml.js';
import { guestDir, testRoot } from '../rig/rig-paths.js';
import { useTestDomains } from '../rig/test-domains.js';
import { tryVirsh, virsh } from '../rig/virsh.js';
import { chainOf, expectDataIntact, layerPaths, shapeOf, shutdownAndCheck } from './chain-json.js';
import { expectBatchedReadAgrees } from '../host/batched-read.js';

const domains = useTestDomains();

function run(...argv: string[]): Promise<unknown> {
  return runChecked(programRunner, { argv });
}

/**
 * One running domain with a writer, shared by every case; its linked clones stay shut off. They
 * reach its layers through `link` (a symlink to its folder, named by a relative backing path) and
 * `bind` (a bind mount of its folder): the same files under other path strings.
 */
let domain: TestDomain;
const clonesDir = path.join(testRoot, `ubt-clones-${randomBytes(4).toString('hex')}`);
const link = path.join(clonesDir, 'link');
const bind = path.join(clonesDir, 'mount');
const clones: string[] = [];

beforeAll(async () => {
  domain = await domains.create({ disks: 1 });
  await waitForSeq(domain, 'vda', 2);
  await mkdir(bind, { recursive: true });
  await symlink(domain.dir, link);
  await run('mount', '--bind', domain.dir, bind);
});

afterAll(async () => {
  for (const clone of clones) await tryVirsh('undefine', '--domain', clone, '--snapshots-metadata');
  // Unmounted first: removing the folder through the bind mount would delete the domain's own files.
  if ((await readFile('/proc/self/mounts', 'utf8')).includes(` ${bind} `)) await run('umount', bind);
  await rm(clonesDir, { recursive: true, force: true });
});

/** Defines a shut-off linked clone whose disk is a new overlay on `backing`, as written (maybe relative). */
async function defineClone(suffix: string, backing: string): Promise<{ name: string; disk: string }> {
  const name = `${domain.name}-${suffix}`;
  const dir = path.join(clonesDir, suffix);
  await mkdir(dir, { recursive: true });
  const disk = path.join(dir, 'vda.qcow2');
  await run('qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', backing, disk);
  const xmlFile = path.join(dir, 'clone.xml');
  await writeFile(
    xmlFile,
    domainXml({
      name,
      kernel: path.join(guestDir, 'vmlinuz'),
      initrd: path.join(guestDir, 'initrd.img'),
      cmdline: 'console=ttyS0',
      consoleLog: path.join(dir, 'console.log'),
      disks: [{ target: 'vda', path: disk, format: 'qcow2' }],
    }),
  );
  await virsh('define', '--file', xmlFile);
  clones.push(name);
  return { name, disk };
}

/** A flattened copy of what a clone reads now, to compare with later. */
async function contentOf(disk: string): Promise<string> {
  const copy = `${disk}.content-${Date.now()}`;
  await run('qemu-img', 'convert', '-U', '-O', 'qcow2', disk, copy);
  return copy;
}

/** `qemu-img compare` exits 0 only when both read the same data everywhere. */
async function expectSameContent(copy: string, disk: string): Promise<void> {
  await run('qemu-img', 'compare', '-U', copy, disk);
}

async function expectFullRefused(clone: string, layer: string): Promise<void> {
  const before = await chainOf(domain.name);
  const files = readdirSync(domain.dir).sort();
  const result = await runCli(['backup', 'full', domain.name]);
  expect(result.exitCode).toBe(1);
  expect(result.stderr).toContain(`${layer} is shared with '${clone}' (a linked clone)`);
  expect(result.stderr).toContain('nothing was changed');
  expect(layerPaths(await chainOf(domain.name))).toEqual(layerPaths(before));
  expect(readdirSync(domain.dir).sort()).toEqual(files);
}

describe('references by file identity, not path string', () => {
  it('full is refused for clones reaching the chain through a bind mount or a symlinked folder; diff keeps their layers', async () => {
    await runCliOk(['backup', 'incr', domain.name]);
    await runCliOk(['backup', 'incr', domain.name]);
    const chain = await chainOf(domain.name);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'incr', 'base'] });
    const [, incr, base] = chain.disks[0]?.layers.map((l) => l.path) ?? [];
    if (incr === undefined || base === undefined) throw new Error('the chain has no frozen layers');

    const onBase = await defineClone('on-base', path.join(bind, path.basename(base)));
    const onBaseContent = await contentOf(onBase.disk);
    await expectFullRefused(onBase.name, `its base ${base}`);

    const onIncr = await defineClone('on-incr', path.join('..', 'link', path.basename(incr)));
    const onIncrContent = await contentOf(onIncr.disk);
    await virsh('undefine', '--domain', onBase.name);
    await expectFullRefused(onIncr.name, `its layer ${incr}`);
    await virsh('define', '--file', path.join(clonesDir, 'on-base', 'clone.xml'));

    const diff = await runCliOk(['backup', 'diff', domain.name]);
    expect(diff.stdout).toContain(`kept ${incr}: still in the chain of '${onIncr.name}'`);
    expect(existsSync(incr)).toBe(true);
    expect(shapeOf(await chainOf(domain.name))).toEqual({ vda: ['incr', 'diff', 'base'] });
    await expectSameContent(onBaseContent, onBase.disk);
    await expectSameContent(onIncrContent, onIncr.disk);
    const after = await chainOf(domain.name);
    await expectDataIntact(after.disks[0]?.layers[1]?.path ?? '', 2);
  });

  it('a purge keeps a layer that only libvirt snapshot metadata of another domain names', async () => {
    await runCliOk(['backup', 'incr', domain.name]);
    const chain = await chainOf(domain.name);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'incr', 'diff', 'base'] });
    const frozen = chain.disks[0]?.layers[1]?.path ?? '';
    // A snapshot of a clone whose kept definition runs from that layer (reached through the symlink).
    const holder = `${domain.name}-on-base`;
    const holderXml = (await virsh('dumpxml', '--inactive', '--domain', holder)).stdout;
    const keptDomain = holderXml.replace(
      /<source file='[^']*'\/>/,
      `<source file='${path.join(link, path.basename(frozen))}'/>`,
    );
    const overlay = path.join(clonesDir, 'snapshot-overlay.qcow2');
    await run('qemu-img', 'create', '-q', '-f', 'qcow2', overlay, '64M');
    const snapshotFile = path.join(clonesDir, 'snapshot.xml');
    await writeFile(
      snapshotFile,
      `<domainsnapshot><name>before-upgrade</name><state>shutoff</state><creationTime>1700000000</creationTime>` +
        `<memory snapshot='no'/><disks><disk name='vda' snapshot='external'><source file='${overlay}'/></disk></disks>${keptDomain}</domainsnapshot>`,
    );
    await virsh('snapshot-create', '--domain', holder, '--xmlfile', snapshotFile, '--redefine');

    const diff = await runCliOk(['backup', 'diff', domain.name]);
    expect(diff.stdout).toContain(`kept ${frozen}: still in the chain of '${holder}'`);
    expect(existsSync(frozen)).toBe(true);
    expect(shapeOf(await chainOf(domain.name))).toEqual({ vda: ['incr', 'diff', 'base'] });
  });
});

describe('a shut-off domain with a managed save image', () => {
  it('is refused by every verb that changes its chain; virsh start resumes it with its data intact', async () => {
    const seq = await waitForSeq(domain, 'vda', 3);
    const uptime = async () => Number((await domain.guestExec(['cat', '/proc/uptime'])).split(' ')[0]);
    const upBefore = await uptime();
    await virsh('managedsave', '--domain', domain.name);
    await expectBatchedReadAgrees([domain.name]);
    const before = await chainOf(domain.name);
    const files = readdirSync(domain.dir).sort();
    for (const verb of [
      ['backup', 'incr'],
      ['backup', 'full'],
      ['maintenance', 'enter'],
    ]) {
      const result = await runCli([...verb, domain.name]);
      expect(result.exitCode, result.stderr).toBe(1);
      expect(result.stderr).toContain(`domain '${domain.name}' is shut off with a managed save image`);
      expect(result.stderr).toContain('expects the disks as they were');
      expect(result.stderr).toContain(`virsh start '${domain.name}'`);
      expect(result.stderr).toContain(`virsh managedsave-remove '${domain.name}'`);
    }
    expect(layerPaths(await chainOf(domain.name))).toEqual(layerPaths(before));
    expect(readdirSync(domain.dir).sort()).toEqual(files);

    await domain.start();
    await domain.waitForAgent();
    // Resumed, not rebooted: the guest's clock goes on from where it was saved.
    expect(await uptime()).toBeGreaterThanOrEqual(upBefore);
    await waitForSeq(domain, 'vda', seq + 2);
    await runCliOk(['backup', 'incr', domain.name]);
    await shutdownAndCheck(domain, seq + 2);
  });
});
