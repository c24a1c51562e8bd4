import { waitForSeq } from '../rig/domain.js';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { programRunner, runChecked } from '../../src/host/runner.js';
import { runCli, runCliOk } from '../cli-run.js';
import { useTestDomains } from '../rig/test-domains.js';
import type { TestDomain } from '../rig/domain.js';
import { domainXml } from '../rig/domain-xml.js';
import { guestDir } from '../rig/rig-paths.js';
import { snapshotRuns, virsh } from '../rig/virsh.js';
import type { JsonChain } from './chain-json.js';
import { chainOf, expectDataIntact, layerPaths, shapeOf, shutdownAndCheck } from './chain-json.js';

const domains = useTestDomains();
const both = (kinds: string[]) => ({ vda: kinds, vdb: kinds });

async function incr(domain: TestDomain, times: number, args: string[] = []): Promise<void> {
  for (let i = 0; i < times; i++) await runCliOk(['backup', 'incr', ...args, domain.name]);
}

function frozen(chain: JsonChain): string[] {
  return chain.disks.flatMap((d) => d.layers.slice(1).map((l) => l.path));
}

async function rebootAndContinue(domain: TestDomain): Promise<void> {
  const before = await domain.lastSeq('vda');
  await domain.destroy();
  await domain.start();
  await domain.waitForAgent();
  await waitForSeq(domain, 'vda', before + 2);
}

describe('diff and full on a running domain', () => {
  it('after 3 incr: diff pulls into one layer, full commits into the base; merged files are gone; data intact', async () => {
    const domain = await domains.create({ disks: 2 });
    await waitForSeq(domain, 'vda', 2);
    await incr(domain, 3);
    const beforeDiff = await chainOf(domain.name);
    expect(shapeOf(beforeDiff)).toEqual(both(['incr', 'incr', 'incr', 'base']));

    const diff = await runCliOk(['backup', 'diff', domain.name]);
    expect(diff.stdout).toContain(`${domain.name}: diff done`);
    // Each disk's block job reports its progress to the end (plain lines when not on a terminal).
    for (const target of ['vda', 'vdb']) expect(diff.stderr).toContain(`${domain.name} ${target} pull 100%`);
    const afterDiff = await chainOf(domain.name);
    expect(shapeOf(afterDiff)).toEqual(both(['incr', 'diff', 'base']));
    const merged = beforeDiff.disks.flatMap((d) => d.layers.slice(0, -1).map((l) => l.path));
    for (const file of merged) expect(existsSync(file), file).toBe(false);
    for (const disk of afterDiff.disks) await expectDataIntact(disk.layers[1]?.path ?? '', 2);

    await rebootAndContinue(domain);
    await incr(domain, 1);
    const beforeFull = await chainOf(domain.name);
    const full = await runCliOk(['--json', 'backup', 'full', domain.name]);
    for (const target of ['vda', 'vdb'])
      expect(full.stderr).toContain(
        JSON.stringify({ event: 'progress', domain: domain.name, target, job: 'commit', percent: 100 }),
      );
    const afterFull = await chainOf(domain.name);
    expect(shapeOf(afterFull)).toEqual(both(['incr', 'base']));
    for (const file of beforeFull.disks.flatMap((d) => d.layers.slice(0, -1).map((l) => l.path)))
      expect(existsSync(file), file).toBe(false);
    for (const disk of domain.disks) await expectDataIntact(disk.path, 2);

    // An incr that --max-incr turns into a diff: the virsh started for its snapshot takes the
    // diff's, and none is left running.
    const capped = await runCliOk(['backup', 'incr', '--max-incr', '1', domain.name]);
    expect(capped.stdout).toContain(`${domain.name}: diff done`);
    expect(shapeOf(await chainOf(domain.name))).toEqual(both(['incr', 'diff', 'base']));
    expect(await snapshotRuns(domain.name)).toEqual([]);

    await rebootAndContinue(domain);
    await shutdownAndCheck(domain, 4);
  });
});

describe('diff and full on a shut-off domain', () => {
  it('gives the same chains through qemu-img and a redefinition; the domain boots and sees its data', async () => {
    const domain = await domains.create({ disks: 2 });
    await waitForSeq(domain, 'vda', 3);
    await domain.shutdown();
    const written = await expectDataIntact(domain.disks[0]?.path ?? '', 3);
    await incr(domain, 3);
    const beforeDiff = await chainOf(domain.name);

    await runCliOk(['backup', 'diff', domain.name]);
    const afterDiff = await chainOf(domain.name);
    expect(shapeOf(afterDiff)).toEqual(both(['incr', 'diff', 'base']));
    for (const file of beforeDiff.disks.flatMap((d) => d.layers.slice(0, -1).map((l) => l.path)))
      expect(existsSync(file), file).toBe(false);

    await domain.start();
    await domain.waitForAgent();
    await waitForSeq(domain, 'vda', written + 2);
    await domain.shutdown();

    await runCliOk(['backup', 'full', domain.name]);
    expect(shapeOf(await chainOf(domain.name))).toEqual(both(['incr', 'base']));
    expect(await expectDataIntact(domain.disks[0]?.path ?? '')).toBeGreaterThanOrEqual(written + 2);
    await domain.start();
    await domain.waitForAgent();
    await shutdownAndCheck(domain, written + 2);
  });
});

describe('disable and enable', () => {
  it('disable leaves the domain on its bases alone; enable starts a new chain', async () => {
    const domain = await domains.create({ disks: 2 });
    await waitForSeq(domain, 'vda', 2);
    await incr(domain, 2);
    const result = await runCliOk(['backup', 'disable', '--yes', domain.name]);
    expect(result.stdout).toContain('disable done');
    expect(shapeOf(await chainOf(domain.name))).toEqual(both(['base']));
    const qcow2Files = readdirSync(domain.dir).filter((f) => /^vd[ab]\./.test(f));
    expect(qcow2Files.sort()).toEqual(['vda.qcow2', 'vdb.qcow2']);
    expect((await runCliOk(['files', domain.name])).stdout.split('\n')).not.toContain(domain.disks[0]?.path);

    await runCliOk(['backup', 'enable', domain.name]);
    expect(shapeOf(await chainOf(domain.name))).toEqual(both(['incr', 'base']));
    await rebootAndContinue(domain);
    await shutdownAndCheck(domain, 2);
  });
});

describe('a long chain', () => {
  it('20 incr → diff → full: the shape at each step, and disk usage back to one base and one small layer', async () => {
    const domain = await domains.create({ disks: 1 });
    await waitForSeq(domain, 'vda', 2);
    const baseSize = (await chainOf(domain.name)).disks[0]?.layers[0]?.actualSize ?? 0;
    for (let i = 1; i <= 20; i++) {
      await incr(domain, 1);
      expect((await chainOf(domain.name)).disks[0]?.layers.length).toBe(i + 1);
    }
    await runCliOk(['backup', 'diff', domain.name]);
    expect(shapeOf(await chainOf(domain.name))).toEqual({ vda: ['incr', 'diff', 'base'] });
    await runCliOk(['backup', 'full', domain.name]);
    const chain = await chainOf(domain.name);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'base'] });
    expect(readdirSync(domain.dir).filter((f) => f.startsWith('vda.'))).toHaveLength(2);
    const total = chain.disks[0]?.layers.reduce((sum, l) => sum + l.actualSize, 0) ?? 0;
    expect(total).toBeLessThan(baseSize + 8 * 1024 * 1024);
    await shutdownAndCheck(domain, 2);
  });
});

describe('a linked clone sharing the base', () => {
  it('full refuses, naming the clone, and changes nothing', async () => {
    const domain = await domains.create({ disks: 1, writer: false });
    await incr(domain, 1);
    const base = domain.disks[0]?.path ?? '';
    const cloneDir = await mkdtemp(path.join(os.tmpdir(), 'ubt-clone-'));
    const cloneDisk = path.join(cloneDir, 'clone.qcow2');
    await runChecked(programRunner, {
      argv: ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, cloneDisk],
    });
    const cloneName = `${domain.name}-clone`;
    const xmlFile = path.join(cloneDir, 'clone.xml');
    await writeFile(
      xmlFile,
      domainXml({
        name: cloneName,
        kernel: path.join(guestDir, 'vmlinuz'),
        initrd: path.join(guestDir, 'initrd.img'),
        cmdline: 'console=ttyS0',
        consoleLog: path.join(cloneDir, 'console.log'),
        disks: [{ target: 'vda', path: cloneDisk, format: 'qcow2' }],
      }),
    );
    await virsh('define', '--file', xmlFile);
    try {
      const before = await chainOf(domain.name);
      const files = readdirSync(domain.dir).sort();
      for (const level of ['full', 'disable']) {
        const result = await runCli(
          ['backup', level, '--yes', domain.name].filter((a) => level === 'disable' || a !== '--yes'),
        );
        expect(result.exitCode).toBe(1);
        expect(result.stderr).toContain(`its base ${base} is shared with '${cloneName}' (a linked clone)`);
        expect(result.stderr).toContain('nothing was changed');
      }
      expect(layerPaths(await chainOf(domain.name))).toEqual(layerPaths(before));
      expect(readdirSync(domain.dir).sort()).toEqual(files);
      // diff never writes the base: it stays allowed.
      await runCliOk(['backup', 'diff', domain.name]);
      expect(shapeOf(await chainOf(domain.name))).toEqual({ vda: ['incr', 'diff', 'base'] });
    } finally {
      await virsh('undefine', '--domain', cloneName);
      await rm(cloneDir, { recursive: true, force: true });
    }
  });
});

describe('foreign layers', () => {
  it('are shown, kept by incr, and consolidated by diff like any other layer', async () => {
    const domain = await domains.create({ disks: 1 });
    await waitForSeq(domain, 'vda', 2);
    await incr(domain, 1);
    const foreign = path.join(domain.dir, 'vda.bimg-20260101-000000');
    await virsh(
      'snapshot-create-as',
      '--domain',
      domain.name,
      '--disk-only',
      '--atomic',
      '--no-metadata',
      '--diskspec',
      `vda,snapshot=external,file=${foreign}`,
    );
    expect(shapeOf(await chainOf(domain.name))).toEqual({ vda: ['foreign', 'incr', 'base'] });
    await incr(domain, 1);
    expect(shapeOf(await chainOf(domain.name))).toEqual({ vda: ['incr', 'foreign', 'incr', 'base'] });
    expect(existsSync(foreign)).toBe(true);
    await runCliOk(['backup', 'diff', domain.name]);
    const chain = await chainOf(domain.name);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'diff', 'base'] });
    expect(existsSync(foreign)).toBe(false);
    await expectDataIntact(frozen(chain)[0] ?? '', 2);
    await shutdownAndCheck(domain, 2);
  });
});

describe('memory state (-s)', () => {
  it('saves a valid libvirt save image atomically with the disks; the VM keeps running', async () => {
    const domain = await domains.create({ disks: 2 });
    await waitForSeq(domain, 'vda', 2);
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'ubt-state-'));
    await runCliOk(['backup', 'incr', '-s', stateDir, domain.name]);
    await runCliOk(['-a', 'backup', '-m', 'diff', '-s', stateDir, domain.name]);
    const chain = await chainOf(domain.name);
    const saved = readdirSync(stateDir).sort();
    expect(saved).toHaveLength(2);
    const stamps = chain.disks[0]?.layers[0]?.path.match(/incr-(\d{8}-\d{6})$/)?.[1];
    expect(saved[1]).toBe(`${domain.name}.incr-${stamps}.memory`);
    for (const file of saved) {
      const xml = await virsh('save-image-dumpxml', path.join(stateDir, file));
      expect(xml.stdout).toContain(`<name>${domain.name}</name>`);
    }
    expect(await domain.state()).toBe('running');
    await waitForSeq(domain, 'vda', (await domain.lastSeq('vda')) + 2);
    await shutdownAndCheck(domain, 2);
  });
});

describe('all', () => {
  it('does every good domain, goes past a broken one, prints a summary and exits 4', async () => {
    const good = [
      await domains.create({ disks: 1, writer: false }),
      await domains.create({ disks: 1, writer: false }),
    ];
    const broken = await domains.create({ disks: 1, start: false });
    await rm(broken.disks[0]?.path ?? '');
    const result = await runCli(['backup', 'incr', 'all']);
    expect(result.exitCode).toBe(4);
    for (const domain of good) {
      expect(shapeOf(await chainOf(domain.name))).toEqual({ vda: ['incr', 'base'] });
      expect(result.stdout).toMatch(new RegExp(`${domain.name}\\s+ok`));
    }
    expect(result.stdout).toMatch(
      new RegExp(`${broken.name}\\s+failed\\s+disk vda of domain '${broken.name}'`),
    );
    expect(result.stderr).toContain(
      `${broken.name}: disk vda of domain '${broken.name}': cannot read its chain`,
    );

    // Reports over all read every domain in one batched virsh run: each entry is what the domain's
    // own report says, and the broken domain fails alone with its own message.
    for (const verb of [['status'], ['files'], ['backup', 'showchain']]) {
      const every = JSON.parse((await runCli(['--json', ...verb, 'all'])).stdout) as {
        domain: string;
        status: string;
        result?: unknown;
        error?: string;
      }[];
      for (const domain of good) {
        const alone: unknown = JSON.parse((await runCliOk(['--json', ...verb, domain.name])).stdout);
        expect(
          every.find((e) => e.domain === domain.name),
          verb.join(' '),
        ).toEqual({
          domain: domain.name,
          status: 'ok',
          result: alone,
        });
      }
      const failed = every.find((e) => e.domain === broken.name);
      expect(failed?.status, verb.join(' ')).toBe('failed');
      expect(failed?.error).toContain(`disk vda of domain '${broken.name}': cannot read its chain`);
    }
  });
});
