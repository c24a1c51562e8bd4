import { waitForSeq } from '../rig/domain.js';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parseDomainXml } from '../../src/host/domainxml.js';
import { lockFile } from '../../src/lock/lock.js';
import { cliPath, isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import { useTestDomains } from '../rig/test-domains.js';
import { guestDir } from '../rig/rig-paths.js';
import { liveSources, snapshotRuns, virsh } from '../rig/virsh.js';
import { chainOf, expectDataIntact, layerPaths, shapeOf, shutdownAndCheck } from './chain-json.js';

const domains = useTestDomains();
const layerName = (stem: string) => new RegExp(`/${stem}\\.incr-\\d{8}-\\d{6}$`);

async function persistentSources(name: string): Promise<(string | undefined)[]> {
  return parseDomainXml((await virsh('dumpxml', '--inactive', '--domain', name)).stdout).disks.map(
    (d) => d.source,
  );
}

describe('backup incr on a running domain', () => {
  it('freezes both disks atomically, with and without quiesce, and keeps the guest data intact', async () => {
    const domain = await domains.create({ disks: 2 });
    await waitForSeq(domain, 'vda', 3);

    const first = await runCliOk(['backup', 'incr', domain.name]);
    expect(first.stdout).toContain(`${domain.name}: incr done`);
    let chain = await chainOf(domain.name);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'base'], vdb: ['incr', 'base'] });
    for (const disk of chain.disks) {
      expect(disk.layers[0]?.path).toMatch(layerName(disk.target));
      expect(disk.layers[0]?.active).toBe(true);
      expect(disk.layers[1]?.path).toBe(path.join(domain.dir, `${disk.target}.qcow2`));
    }
    // The config dumps describe the chain being frozen: they point at the layers now frozen.
    for (const suffix of ['', '-inactive', '-migratable']) {
      const dump = path.join(domain.dir, `${domain.name}${suffix}.xml`);
      expect(parseDomainXml(readFileSync(dump, 'utf8')).disks.map((d) => d.source)).toEqual(
        domain.disks.map((d) => d.path),
      );
    }
    for (const disk of domain.disks) await expectDataIntact(disk.path, 3);

    await waitForSeq(domain, 'vda', 6);
    await runCliOk(['backup', 'incr', '--quiesce', domain.name]);
    chain = await chainOf(domain.name);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'incr', 'base'], vdb: ['incr', 'incr', 'base'] });
    for (const disk of chain.disks) await expectDataIntact(disk.layers[1]?.path ?? '', 6);
    // Chains are read in-process: the same files qemu-img finds under the running domain.
    for (const disk of chain.disks) {
      const { stdout } = await execa('qemu-img', [
        'info',
        '--backing-chain',
        '-U',
        '--output=json',
        '--',
        disk.layers[0]?.path ?? '',
      ]);
      const reference = (JSON.parse(stdout) as { filename: string }[]).map((layer) => layer.filename);
      expect(disk.layers.map((layer) => layer.path)).toEqual(reference);
    }

    // The persistent definition follows: a cold restart runs from the new tops.
    const tops = chain.disks.map((d) => d.layers[0]?.path);
    expect(await persistentSources(domain.name)).toEqual(tops);
    const before = await domain.lastSeq('vda');
    await domain.destroy();
    await domain.start();
    await domain.waitForAgent();
    expect(await liveSources(domain.name)).toEqual(tops);
    await waitForSeq(domain, 'vda', before + 2);
    await shutdownAndCheck(domain, before + 2);
  });
});

describe('backup incr on a shut-off domain', () => {
  it('creates the overlays, redefines the domain, and the domain starts and sees its data', async () => {
    const domain = await domains.create({ disks: 2 });
    await waitForSeq(domain, 'vda', 3);
    await domain.shutdown();
    const before = await expectDataIntact(domain.disks[0]?.path ?? '', 3);

    await runCliOk(['backup', 'incr', domain.name]);
    const chain = await chainOf(domain.name);
    expect(chain.runState).toBe('shut off');
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'base'], vdb: ['incr', 'base'] });
    expect(await persistentSources(domain.name)).toEqual(chain.disks.map((d) => d.layers[0]?.path));

    await domain.start();
    await domain.waitForAgent();
    await waitForSeq(domain, 'vda', before + 2);
    await shutdownAndCheck(domain, before + 2);
    // The frozen base holds exactly what was there at the snapshot.
    expect(await expectDataIntact(domain.disks[0]?.path ?? '')).toBe(before);
  });
});

describe('showchain and files', () => {
  it('report the chain top to base and hand a backup program only frozen layers, config dumps and the VM files', async () => {
    const domain = await domains.create({ disks: 2, cdrom: 'iso', writer: false });
    await runCliOk(['backup', 'incr', domain.name]);
    await runCliOk(['backup', 'incr', domain.name]);
    const chain = await chainOf(domain.name);
    const active = chain.disks.map((d) => d.layers[0]?.path ?? '');

    const text = (await runCliOk(['backup', 'showchain', domain.name])).stdout;
    expect(text.split('\n')[0]).toBe(`${domain.name} (running)`);
    for (const top of active)
      expect(text).toMatch(new RegExp(`active\\s+incr\\s+.*${top.replaceAll('.', '\\.')}`));
    expect(text).not.toContain('hdc');
    expect((await runCliOk(['chain', domain.name])).stdout).toBe(text);

    const files = (await runCliOk(['files', domain.name])).stdout.split('\n');
    const frozen = layerPaths(chain).filter((p) => !active.includes(p));
    expect(files).toEqual([
      ...frozen,
      ...['', '-inactive', '-migratable'].map((s) => path.join(domain.dir, `${domain.name}${s}.xml`)),
      // the direct-kernel boot's files are part of the VM
      path.join(guestDir, 'vmlinuz'),
      path.join(guestDir, 'initrd.img'),
    ]);
    for (const top of active) expect(files).not.toContain(top);
    const json = JSON.parse((await runCliOk(['--json', 'files', domain.name])).stdout) as { files: string[] };
    expect(json.files).toEqual(files);

    const printed = await runCliOk(['backup', 'incr', '-p', domain.name]);
    const after = await chainOf(domain.name);
    const newTops = after.disks.map((d) => d.layers[0]?.path ?? '');
    for (const top of active) expect(printed.stdout.split('\n')).toContain(top);
    for (const top of newTops) expect(printed.stdout.split('\n')).not.toContain(top);
  });
});

describe('one operation per domain', () => {
  it('a second run exits 3 naming the holder; a holder killed with SIGKILL holds nothing', async () => {
    const domain = await domains.create({ disks: 1, writer: false });
    const env = isolatedEnv();
    const holder = execa('node', [cliPath, 'backup', 'incr', domain.name], {
      env: { ...env, UNIFI_BACKUP_FAULT_HOLD_LOCK_MS: '60000' },
      reject: false,
    });
    const file = lockFile(env.UNIFI_BACKUP_LOCK_DIR ?? '', domain.name);
    for (
      let i = 0;
      i < 100 && !(existsSync(file) && readFileSync(file, 'utf8').includes(String(holder.pid)));
      i++
    )
      await new Promise((resolve) => setTimeout(resolve, 100));

    const second = await runCli(['backup', 'incr', domain.name], env);
    expect(second.exitCode).toBe(3);
    expect(second.stderr).toMatch(
      new RegExp(
        `domain '${domain.name}' is busy: 'backup incr' \\(pid ${holder.pid} on .*\\) holds its lock`,
      ),
    );
    const diff = await runCli(['backup', 'diff', domain.name], env);
    expect(diff.exitCode).toBe(3);
    // Each prepared its snapshot before it found the lock taken (on libvirt's own connection
    // here): none runs a virsh for it, none made a change.
    expect(await snapshotRuns(domain.name)).toEqual([]);

    holder.kill('SIGKILL');
    await holder;
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({ vda: ['base'] });
    await runCliOk(['backup', 'incr', domain.name], env);
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({ vda: ['incr', 'base'] });
  });
});

describe('the original script’s flags', () => {
  it('give the same result as the subcommands', async () => {
    const domain = await domains.create({ disks: 2, writer: false });
    const seed = await runCliOk(['-a', 'backup', '-m', 'incr', '-p', domain.name]);
    const afterSeed = await chainOf(domain.name);
    expect(shapeOf(afterSeed)).toEqual({ vda: ['incr', 'base'], vdb: ['incr', 'base'] });
    expect(seed.stdout.split('\n')).toEqual(expect.arrayContaining(domain.disks.map((d) => d.path)));
    await runCliOk(['backup', 'incr', domain.name]);
    expect(shapeOf(await chainOf(domain.name))).toEqual({
      vda: ['incr', 'incr', 'base'],
      vdb: ['incr', 'incr', 'base'],
    });
    const seedChain = await runCliOk(['-a', 'backup', '-m', 'showchain', domain.name]);
    expect(seedChain.stdout).toBe((await runCliOk(['backup', 'showchain', domain.name])).stdout);
    expect((await runCli(['-V'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const bad = await runCli(['-a', 'backup', '-m', 'incr']);
    expect(bad.exitCode).toBe(2);
  });
});

describe('bad input gets a clear error and changes nothing', () => {
  const listing = (dir: string) => readdirSync(dir).sort();

  it('an unknown domain', async () => {
    const result = await runCli(['backup', 'incr', 'no-such-domain-ubt']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/no-such-domain-ubt.*no such domain.*virsh list --all/);
  });

  it('a disk left out by name keeps its file; without --exclude a raw disk takes part', async () => {
    const domain = await domains.create({ disks: 1, rawDisk: true, writer: false });
    const raw = domain.rawDisk?.target ?? '';
    await runCliOk(['backup', 'incr', '--exclude', raw, domain.name]);
    expect(await liveSources(domain.name)).toEqual([
      expect.stringMatching(layerName('vda')),
      domain.rawDisk?.path,
    ]);
    await runCliOk(['backup', 'incr', domain.name]);
    const chain = await chainOf(domain.name);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'incr', 'base'], [raw]: ['incr', 'base'] });
    expect(chain.disks[1]?.layers[1]?.path).toBe(domain.rawDisk?.path);
  });

  it('a missing disk file', async () => {
    const domain = await domains.create({ disks: 2, start: false });
    const missing = domain.disks[1]?.path ?? '';
    rmSync(missing);
    const before = listing(domain.dir);
    const result = await runCli(['backup', 'incr', domain.name]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(
      `disk vdb of domain '${domain.name}': cannot read its chain from ${missing}`,
    );
    expect(listing(domain.dir)).toEqual(before);
    expect(await persistentSources(domain.name)).toEqual(domain.disks.map((d) => d.path));
  });

  it('--quiesce without a guest agent', async () => {
    const domain = await domains.create({ disks: 1, writer: false });
    await domain.guestExec(['sh', '-c', '(sleep 1; killall qemu-ga) >/dev/null 2>&1 &']);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const before = listing(domain.dir);
    const result = await runCli(['backup', 'incr', '-q', domain.name]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/guest agent does not answer.*Nothing was changed.*without --quiesce/);
    expect(listing(domain.dir)).toEqual(before);
    expect(await liveSources(domain.name)).toEqual(domain.disks.map((d) => d.path));
    // The virsh started for the snapshot while the agent was asked took none and is gone.
    expect(await snapshotRuns(domain.name)).toEqual([]);
  });

  it('names and paths with spaces, quotes and $(…) are data, never code', async () => {
    // No '/' in a domain name (libvirt's rule); a canary relative to the working directory.
    const canary = `ubt-canary-${process.pid}`;
    const domain = await domains.create({
      name: `ubt q "a" 'b' $(touch ${canary}) x`,
      dirName: `ubt dir 'q' "d" $(touch ${canary})`,
      disks: 1,
    });
    await waitForSeq(domain, 'vda', 2);
    await runCliOk(['backup', 'incr', domain.name]);
    await runCliOk(['-a', 'backup', '-m', 'incr', domain.name]);
    const chain = await chainOf(domain.name);
    expect(shapeOf(chain)).toEqual({ vda: ['incr', 'incr', 'base'] });
    expect((await runCliOk(['files', domain.name])).stdout).toContain(
      path.join(domain.dir, `${domain.name}.xml`),
    );
    expect(existsSync(canary) || existsSync(path.join('/', canary))).toBe(false);
    await shutdownAndCheck(domain, 2);
  });
});
