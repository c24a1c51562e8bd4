import { waitForSeq } from '../rig/domain.js';
import { readFileSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDomainXml } from '../../src/host/domainxml.js';
import { programRunner, runChecked } from '../../src/host/runner.js';
import type { SyncResult } from '../../src/ops/sync.js';
import { isolatedEnv, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { useTestDomains } from '../rig/test-domains.js';
import { testRoot } from '../rig/rig-paths.js';
import { virsh } from '../rig/virsh.js';
import { chainOf, expectDataIntact, shapeOf } from './chain-json.js';
import type { TestRepository } from './repositories.js';
import { localRepository } from './repositories.js';
import { bootAndCheckRestored, cleanupRestored } from './restored.js';

const domains = useTestDomains();
const env = isolatedEnv();

interface ImageJson {
  format: string;
  'virtual-size': number;
  'actual-size': number;
  'backing-filename-format'?: string;
}

async function imageInfo(file: string): Promise<ImageJson> {
  const { stdout } = await runChecked(programRunner, {
    argv: ['qemu-img', 'info', '--output=json', '-U', '--', file],
  });
  return JSON.parse(stdout) as ImageJson;
}

/** The driver type of vda in the live and the persistent definition. */
async function driverTypes(name: string): Promise<(string | undefined)[]> {
  const live = (await virsh('dumpxml', '--domain', name)).stdout;
  const inactive = (await virsh('dumpxml', '--inactive', '--domain', name)).stdout;
  return [live, inactive].map((xml) => parseDomainXml(xml).disks[0]?.driverType);
}

/** The raw base is still raw, and sparse: it holds far fewer bytes than its size. */
async function expectSparseRawBase(file: string): Promise<void> {
  const info = await imageInfo(file);
  expect(info.format).toBe('raw');
  expect(info['actual-size']).toBeLessThan(info['virtual-size'] / 2);
}

describe('a raw file disk whose guest wrote a qcow2 header into it', () => {
  it('is read as raw: the header it holds never names a host file into the chain or the backup', async () => {
    const domain = await domains.create({ diskFormat: 'raw', diskSizeMiB: 8, start: false, writer: false });
    const raw = domain.disks[0]?.path ?? '';
    const planted = join(domain.dir, 'planted.qcow2');
    await runChecked(programRunner, {
      argv: ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/hostname', planted, '1M'],
    });
    const handle = await open(raw, 'r+');
    try {
      await handle.write(await readFile(planted), 0, undefined, 0);
    } finally {
      await handle.close();
    }
    await rm(planted);
    expect((await imageInfo(raw)).format).toBe('qcow2');

    await runCliOk(['backup', 'incr', domain.name], env);
    const chain = await chainOf(domain.name, env);
    expect(chain.disks[0]?.layers.map((l) => l.path).slice(1)).toEqual([raw]);
    expect((await imageInfo(chain.disks[0]?.layers[0]?.path ?? ''))['backing-filename-format']).toBe('raw');
    expect((await runCliOk(['files', domain.name], env)).stdout).not.toContain('/etc/hostname');
  });
});

describe('a raw file disk', () => {
  let repo: TestRepository;
  let domain: TestDomain;
  let base: string;

  beforeAll(async () => {
    repo = await localRepository();
    domain = await domains.create({ diskFormat: 'raw', diskSizeMiB: 32 });
    base = domain.disks[0]?.path ?? '';
  });
  afterAll(async () => {
    await cleanupRestored();
    await repo.stop();
  });

  it('running: incr and run freeze the raw base under qcow2 overlays; files lists it; restore rebuilds the chain', async () => {
    await waitForSeq(domain, 'vda', 3);
    await runCliOk(['run', 'incr', domain.name, '--config', repo.configFile, '--init'], env);
    let chain = await chainOf(domain.name, env);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'base'] });
    expect(chain.disks[0]?.layers[1]?.path).toBe(base);
    const top = chain.disks[0]?.layers[0]?.path ?? '';
    expect((await imageInfo(top))['backing-filename-format']).toBe('raw');
    expect(await driverTypes(domain.name)).toEqual(['qcow2', 'qcow2']);
    expect((await runCliOk(['files', domain.name], env)).stdout.split('\n')).toContain(base);
    const seqFrozen = await expectDataIntact(base, 3);

    await waitForSeq(domain, 'vda', seqFrozen + 2);
    await runCliOk(['run', 'incr', domain.name, '--config', repo.configFile], env);
    chain = await chainOf(domain.name, env);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'incr', 'base'] });
    const seqSecond = await expectDataIntact(chain.disks[0]?.layers[1]?.path ?? '', seqFrozen + 2);

    // The latest backup: a qcow2 layer over the raw base, relinked and defined as a new domain.
    const result = await bootAndCheckRestored(
      { domain: domain.name, from: 'restic', config: repo.configFile, env },
      [{ target: 'vda', seqAtLeast: seqSecond }],
    );
    const restored = result.disks[0]?.chain ?? [];
    // The restored domain booted from this chain: its top qcow2 layer opened the raw base as raw.
    expect(restored.map((f) => basename(f))).toEqual([basename(top), basename(base)]);
  });

  it('running: diff pulls above the raw base; full and disable commit into it, which stays raw and sparse', async () => {
    await runCliOk(['backup', 'diff', domain.name], env);
    let chain = await chainOf(domain.name, env);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'diff', 'base'] });
    const seqDiff = await expectDataIntact(chain.disks[0]?.layers[1]?.path ?? '', 3);
    expect((await imageInfo(chain.disks[0]?.layers[1]?.path ?? ''))['backing-filename-format']).toBe('raw');

    await waitForSeq(domain, 'vda', seqDiff + 2);
    await runCliOk(['backup', 'full', domain.name], env);
    chain = await chainOf(domain.name, env);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'base'] });
    expect(chain.disks[0]?.layers[1]?.path).toBe(base);
    await expectSparseRawBase(base);
    const seqFull = await expectDataIntact(base, seqDiff + 2);

    await waitForSeq(domain, 'vda', seqFull + 2);
    await runCliOk(['backup', 'disable', domain.name], env);
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({ vda: ['base'] });
    expect(await driverTypes(domain.name)).toEqual(['raw', 'raw']);
    await domain.shutdown();
    await expectSparseRawBase(base);
    await expectDataIntact(base, seqFull + 2);
  });

  it('shut off: incr, diff, full, disable and maintenance keep the definition on the right format and the data as it was', async () => {
    const seqOff = await expectDataIntact(base, 3);
    await runCliOk(['backup', 'incr', domain.name], env);
    expect(await driverTypes(domain.name)).toEqual(['qcow2', 'qcow2']);

    // A diff replica of a chain whose only frozen layer is the raw base: a raw copy, defined as raw.
    const replicaDir = join(testRoot, `replica-${domain.name}`);
    try {
      const { stdout } = await runCliOk(['--json', 'sync', 'diff', domain.name, '--target', replicaDir], env);
      const sync = JSON.parse(stdout) as SyncResult;
      const copy = join(replicaDir, sync.disks[0]?.files.at(-1) ?? '');
      expect((await imageInfo(copy)).format).toBe('raw');
      expect(parseDomainXml(readFileSync(sync.definition, 'utf8')).disks[0]?.driverType).toBe('raw');
      const compare = await programRunner({ argv: ['qemu-img', 'compare', '-U', base, copy] });
      expect(compare.exitCode, compare.stdout + compare.stderr).toBe(0);
      await expectDataIntact(copy, seqOff);
    } finally {
      await rm(replicaDir, { recursive: true, force: true });
    }

    await runCliOk(['backup', 'diff', domain.name], env);
    let chain = await chainOf(domain.name, env);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'diff', 'base'] });
    expect((await imageInfo(chain.disks[0]?.layers[1]?.path ?? ''))['backing-filename-format']).toBe('raw');
    await runCliOk(['backup', 'full', domain.name], env);
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({ vda: ['incr', 'base'] });
    await runCliOk(['backup', 'disable', domain.name], env);
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({ vda: ['base'] });
    expect(await driverTypes(domain.name)).toEqual(['raw', 'raw']);

    await runCliOk(['maintenance', 'enter', domain.name], env);
    chain = await chainOf(domain.name, env);
    expect(shapeOf(chain)).toEqual({ vda: ['maintenance', 'base'] });
    await runCliOk(['maintenance', 'drop', domain.name], env);
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({ vda: ['base'] });
    expect(await driverTypes(domain.name)).toEqual(['raw', 'raw']);
    await expectSparseRawBase(base);
    expect(await expectDataIntact(base, seqOff)).toBe(seqOff);
  });
});
