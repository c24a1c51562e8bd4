import { waitForSeq } from '../rig/domain.js';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReplicaState } from '../../src/chain/replica.js';
import { programRunner } from '../../src/host/runner.js';
import { stateFile } from '../../src/ops/replicastate.js';
import type { SyncResult } from '../../src/ops/sync.js';
import { cliPath, isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import { guestExec, waitForAgent } from '../rig/agent.js';
import { useTestDomains } from '../rig/test-domains.js';
import type { TestDomain } from '../rig/domain.js';
import { checkImage } from '../rig/image.js';
import { testRoot } from '../rig/rig-paths.js';
import { domainState, tryVirsh, virsh } from '../rig/virsh.js';
import { chainOf, layerPaths } from './chain-json.js';

const domains = useTestDomains();
const env = isolatedEnv();
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function replicaDir(tag: string): Promise<string> {
  const dir = join(testRoot, `replica-${tag}-${Math.random().toString(16).slice(2, 8)}`);
  await mkdir(dir, { recursive: true });
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function forgetReplica(name: string): void {
  cleanups.push(async () => {
    await tryVirsh('destroy', '--domain', name);
    await tryVirsh('undefine', '--domain', name);
  });
}

async function sync(mode: string, domain: string, dir: string, ...more: string[]): Promise<SyncResult> {
  const { stdout } = await runCliOk(['--json', 'sync', mode, domain, '--target', dir, ...more], env);
  return JSON.parse(stdout) as SyncResult;
}

function readState(dir: string, domain: string): ReplicaState {
  return JSON.parse(readFileSync(stateFile(dir, domain), 'utf8')) as ReplicaState;
}

/** The replica's data equals the source's at the frozen point: same guest-visible bytes, clean fs. */
async function expectReplicaEqualsFrozen(dir: string, domain: string, marker?: string): Promise<void> {
  const state = readState(dir, domain);
  for (const disk of state.disks) {
    const top = join(dir, disk.files.at(-1)?.file ?? '');
    const frozenTop = disk.files.at(-1)?.holds.at(-1)?.path ?? '';
    const compare = await programRunner({ argv: ['qemu-img', 'compare', '-U', frozenTop, top] });
    expect(compare.exitCode, `${disk.target}: ${compare.stdout}${compare.stderr}`).toBe(0);
    const check = await checkImage(top);
    expect(check.fsckClean, check.fsckOutput).toBe(true);
    expect(check.records.problems).toEqual([]);
    if (marker !== undefined && disk.target === 'vda') {
      expect(check.records.count).toBeGreaterThan(0);
      expect(check.marker).toBe(marker);
    }
  }
}

/** Boots the defined replica, proves its guest sees the frozen data and keeps writing, powers it off. */
async function bootReplica(replica: string, marker: string): Promise<void> {
  await virsh('start', '--domain', replica);
  await waitForAgent(replica, 180_000);
  // The agent starts before the guest mounts its data disks (a journal replay takes a while).
  let seen = await guestExec(replica, ['cat', '/mnt/vda/marker']);
  for (let tries = 0; tries < 120 && seen.exitCode !== 0; tries++) {
    await sleep(500);
    seen = await guestExec(replica, ['cat', '/mnt/vda/marker']);
  }
  expect(seen.stdout, seen.stderr).toBe(marker);
  const tail = await guestExec(replica, ['tail', '-n', '1', '/mnt/vda/records.log']);
  expect(tail.exitCode).toBe(0);
  await tryVirsh('destroy', '--domain', replica);
}

async function frozenRound(domain: TestDomain, marker: string): Promise<void> {
  await domain.writeMarker('vda', marker);
  const seq = await domain.lastSeq('vda');
  await waitForSeq(domain, 'vda', seq + 2);
  await runCliOk(['backup', 'incr', domain.name], env);
}

describe('sync', () => {
  it('full: a standalone replica per disk that boots with the data frozen by the incr', async () => {
    const domain = await domains.create({ disks: 2 });
    await Promise.all([waitForSeq(domain, 'vda', 3), waitForSeq(domain, 'vdb', 3)]);
    await frozenRound(domain, 'full 1');
    const dir = await replicaDir('full');
    const replica = `${domain.name}-replica`;
    forgetReplica(replica);
    const result = await sync('full', domain.name, dir, '--define');
    console.log(`sync full, 2 disks: ${result.bytesCopied} bytes in ${result.durationMs} ms`);
    expect(result.bytesCopied).toBeGreaterThan(0);
    expect(result.disks.map((d) => d.files.length)).toEqual([1, 1]);
    await expectReplicaEqualsFrozen(dir, domain.name, 'full 1');
    const info = await programRunner({ argv: ['qemu-img', 'info', '--output=json', join(dir, 'vda.qcow2')] });
    expect(info.stdout).not.toContain('backing-filename');
    const xml = (await virsh('dumpxml', '--domain', replica)).stdout;
    expect(xml).not.toContain((await virsh('domuuid', '--domain', domain.name)).stdout.trim());
    expect(xml).toContain(dir);
    expect(xml).not.toContain('<backingStore');
    await bootReplica(replica, 'full 1');
    expect(await domain.state()).toBe('running');

    // The booted replica changed; the next sync rebuilds it under the other name.
    await frozenRound(domain, 'full 2');
    await sync('full', domain.name, dir);
    await expectReplicaEqualsFrozen(dir, domain.name, 'full 2');
    expect(readdirSync(dir).filter((f) => f.includes('.qcow2'))).toHaveLength(2);
  });

  it('diff: repeated incr rounds copy only the new layers; consolidated layers are pruned', async () => {
    const domain = await domains.create({ disks: 1 });
    await waitForSeq(domain, 'vda', 3);
    await frozenRound(domain, 'diff 0');
    const dir = await replicaDir('diff');
    const replica = `${domain.name}-replica`;
    forgetReplica(replica);
    const first = await sync('diff', domain.name, dir);
    console.log(`sync diff initial: ${first.bytesCopied} bytes in ${first.durationMs} ms`);
    await expectReplicaEqualsFrozen(dir, domain.name, 'diff 0');
    for (let round = 1; round <= 3; round++) {
      await frozenRound(domain, `diff ${round}`);
      const result = await sync('diff', domain.name, dir);
      const state = readState(dir, domain.name);
      const newest = state.disks[0]?.files.at(-1)?.holds[0];
      console.log(
        `sync diff round ${round}: copied ${result.bytesCopied} bytes, newly frozen layer ${newest?.size} bytes, ${result.durationMs} ms`,
      );
      expect(result.bytesCopied).toBe(newest?.size);
      expect(state.disks[0]?.files).toHaveLength(round + 1);
      await expectReplicaEqualsFrozen(dir, domain.name, `diff ${round}`);
    }
    await runCliOk(['backup', 'diff', domain.name], env);
    const before = readState(dir, domain.name).disks[0]?.files.map((f) => f.file) ?? [];
    const result = await sync('diff', domain.name, dir, '--define');
    const after = readState(dir, domain.name).disks[0]?.files.map((f) => f.file) ?? [];
    console.log(
      `sync diff after backup diff: copied ${result.bytesCopied} bytes, chain ${after.join(' ← ')}`,
    );
    expect(after[0]).toBe(before[0]);
    for (const pruned of before.slice(1).filter((f) => !after.includes(f)))
      expect(existsSync(join(dir, pruned))).toBe(false);
    expect(after.length).toBeLessThan(before.length);
    await expectReplicaEqualsFrozen(dir, domain.name, 'diff 3');
    await bootReplica(replica, 'diff 3');
  });

  it('inplace: one image per disk; each round merges only the newly frozen layer', async () => {
    const domain = await domains.create({ disks: 1 });
    await waitForSeq(domain, 'vda', 3);
    await frozenRound(domain, 'inplace 0');
    const dir = await replicaDir('inplace');
    const replica = `${domain.name}-replica`;
    forgetReplica(replica);
    const first = await sync('inplace', domain.name, dir);
    console.log(`sync inplace initial: ${first.bytesCopied} bytes in ${first.durationMs} ms`);
    await expectReplicaEqualsFrozen(dir, domain.name, 'inplace 0');
    for (let round = 1; round <= 3; round++) {
      await frozenRound(domain, `inplace ${round}`);
      const result = await sync('inplace', domain.name, dir);
      const files = readState(dir, domain.name).disks[0]?.files ?? [];
      expect(files.map((f) => f.file)).toEqual(['vda.qcow2']);
      const newest = files[0]?.holds.at(-1);
      console.log(
        `sync inplace round ${round}: copied ${result.bytesCopied} bytes, newly frozen layer ${newest?.size} bytes, ${result.durationMs} ms`,
      );
      expect(result.bytesCopied).toBe(newest?.size);
      expect(readdirSync(dir).filter((f) => !f.endsWith('.json') && !f.endsWith('.xml'))).toEqual([
        'vda.qcow2',
      ]);
      await expectReplicaEqualsFrozen(dir, domain.name, `inplace ${round}`);
    }
    await runCliOk(['backup', 'full', domain.name], env);
    const rebuilt = await sync('inplace', domain.name, dir, '--define');
    expect(rebuilt.notes.join('\n')).toMatch(/base changed/);
    await expectReplicaEqualsFrozen(dir, domain.name, 'inplace 3');
    await bootReplica(replica, 'inplace 3');
  });

  it('keeps same-named disks of domains in different folders apart, with stable names', async () => {
    const one = await domains.create({ start: false, writer: false });
    const two = await domains.create({ start: false, writer: false });
    for (const d of [one, two]) await runCliOk(['backup', 'incr', d.name], env);
    const dir = await replicaDir('collide');
    const a = await sync('diff', one.name, dir);
    const b = await sync('diff', two.name, dir);
    const names = [...(a.disks[0]?.files ?? []), ...(b.disks[0]?.files ?? [])];
    expect(new Set(names).size).toBe(names.length);
    expect(a.disks[0]?.files[0]).toBe('vda.qcow2');
    expect(b.disks[0]?.files[0]).toMatch(/^[0-9a-f]{8}-vda\.qcow2$/);
    const again = await sync('diff', two.name, dir);
    expect(again.disks).toEqual(b.disks);
    expect(again.bytesCopied).toBe(0);
    for (const d of [one, two]) await expectReplicaEqualsFrozen(dir, d.name);
  });

  it('a sync killed with SIGKILL leaves the previous replica bootable; the next sync completes', async () => {
    const domain = await domains.create({ disks: 1, diskSizeMiB: 256 });
    await waitForSeq(domain, 'vda', 3);
    await frozenRound(domain, 'kill 0');
    const dir = await replicaDir('kill');
    const replica = `${domain.name}-replica`;
    forgetReplica(replica);
    await sync('inplace', domain.name, dir, '--define');
    const before = readFileSync(stateFile(dir, domain.name), 'utf8');
    await guestExec(
      domain.name,
      ['dd', 'if=/dev/urandom', 'of=/mnt/vda/fill', 'bs=1M', 'count=120'],
      240_000,
    );
    await domain.guestExec(['sync']);
    await frozenRound(domain, 'kill 1');

    const child = execa('node', [cliPath, 'sync', 'inplace', domain.name, '--target', dir], {
      reject: false,
      env: { ...env, NO_COLOR: '1' },
    });
    let killedMidway = false;
    for (let tries = 0; tries < 20_000 && !killedMidway; tries++) {
      const temps = readdirSync(dir).filter((f) => f.startsWith('.ub-tmp.'));
      if (temps.some((f) => (statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0) > 0)) {
        child.kill('SIGKILL');
        killedMidway = true;
      } else await sleep(2);
    }
    const killed = await child;
    expect(killedMidway).toBe(true);
    expect(killed.signal).toBe('SIGKILL');
    expect(readFileSync(stateFile(dir, domain.name), 'utf8')).toBe(before);
    await expectReplicaEqualsFrozen(dir, domain.name, 'kill 0');
    await bootReplica(replica, 'kill 0');

    const result = await sync('inplace', domain.name, dir);
    expect(readdirSync(dir).filter((f) => f.startsWith('.ub-tmp.'))).toEqual([]);
    await expectReplicaEqualsFrozen(dir, domain.name, 'kill 1');
    console.log(`sync inplace after SIGKILL: ${result.bytesCopied} bytes; notes: ${result.notes.join('; ')}`);
    await bootReplica(replica, 'kill 1');
  });

  it('a sync killed after each of its steps: the replica stays readable, the next sync completes it', async () => {
    const domain = await domains.create({ disks: 1 });
    await waitForSeq(domain, 'vda', 3);
    const replica = `${domain.name}-replica`;
    forgetReplica(replica);
    for (const mode of ['full', 'diff', 'inplace'] as const) {
      const dir = await replicaDir(`faults-${mode}`);
      await frozenRound(domain, `${mode} 0`);
      // An earlier replica, so that every kill has one to keep.
      await sync(mode, domain.name, dir);
      let k = 1;
      for (let completed = false; !completed; k += 1) {
        const what = `sync ${mode} killed after step ${k}`;
        const started = Date.now();
        await frozenRound(domain, `${mode} ${k}`);
        // diff: the source's chain shrinks, so the replica merges and prunes as well.
        if (mode === 'diff' && k % 2 === 0) await runCliOk(['backup', 'diff', domain.name], env);
        const source = layerPaths(await chainOf(domain.name, env));
        const killed = await runCli(['sync', mode, domain.name, '--target', dir], {
          ...env,
          UNIFI_BACKUP_FAULT_KILL_AFTER_STEP: String(k),
        });
        completed = killed.exitCode === 0;
        // Whatever step it died after, the state file names a replica whose files are whole.
        for (const disk of readState(dir, domain.name).disks) {
          const check = await checkImage(join(dir, disk.files.at(-1)?.file ?? ''));
          expect(check.fsckClean, `${what}: ${check.fsckOutput}`).toBe(true);
          expect(check.records.problems, what).toEqual([]);
        }
        await sync(mode, domain.name, dir, ...(completed ? ['--define'] : []));
        expect(
          readdirSync(dir).filter((f) => f.startsWith('.ub-tmp.')),
          what,
        ).toEqual([]);
        const after = readState(dir, domain.name);
        // A retired file the prune had to keep stays listed, for the next sync to retry.
        const used = new Set([...after.disks.flatMap((d) => d.files.map((f) => f.file)), ...after.retired]);
        const images = readdirSync(dir).filter((f) => !f.endsWith('.json') && !f.endsWith('.xml'));
        expect(
          images.filter((f) => !used.has(f)),
          `${what}: files the replica does not use`,
        ).toEqual([]);
        await expectReplicaEqualsFrozen(dir, domain.name, `${mode} ${k}`);
        for (const file of source) expect(existsSync(file), `${what}: ${file}`).toBe(true);
        expect(await domainState(domain.name), what).toBe('running');
        console.log(`${what}${completed ? ' (ran to its end)' : ''}: ${Date.now() - started} ms`);
        expect(k, `sync ${mode} has no end`).toBeLessThan(15);
      }
      // A full replica is one standalone image per disk, booted by the 'full' case above.
      if (mode !== 'full') await bootReplica(replica, `${mode} ${k - 1}`);
      await tryVirsh('undefine', '--domain', replica);
    }
  });
});
