import { waitForSeq } from '../rig/domain.js';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChainReport } from '../../src/ops/inspect.js';
import { maintenanceStatus } from '../../src/ops/maintenance-record.js';
import { isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { useTestDomains } from '../rig/test-domains.js';
import { checkImage } from '../rig/image.js';
import { testRoot } from '../rig/rig-paths.js';

const domains = useTestDomains();
const env = isolatedEnv();
const stateDir = env.UNIFI_BACKUP_STATE_DIR ?? '';

/** Each disk's chain, top (active) first, as the tool reports it. */
async function chains(domain: TestDomain): Promise<Record<string, string[]>> {
  const { stdout } = await runCliOk(['--json', 'backup', 'showchain', domain.name], env);
  const report = JSON.parse(stdout) as ChainReport;
  return Object.fromEntries(report.disks.map((d) => [d.target, d.layers.map((l) => l.path)]));
}

async function layerFiles(domain: TestDomain, kind: string): Promise<string[]> {
  return (await readdir(domain.dir)).filter((f) => f.includes(`.${kind}-`));
}

/**
 * The files an operation left behind are gone — unless some other domain's chain on this busy host
 * cannot be read: then invariant 1 keeps them, and the output must say so.
 */
async function expectRemoved(domain: TestDomain, kind: string, output: string): Promise<void> {
  for (const file of await layerFiles(domain, kind)) expectGone(path.join(domain.dir, file), output);
}

function expectGone(file: string, output: string): void {
  if (existsSync(file))
    expect(output).toMatch(
      new RegExp(`kept ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the chain of .* cannot be read`),
    );
}

/** Shuts the guest down and checks every disk's top layer: clean filesystem, records intact. */
async function checkDisks(domain: TestDomain) {
  await domain.shutdown();
  const tops = await chains(domain);
  const checks = [];
  for (const disk of domain.disks) {
    const top = tops[disk.target]?.[0] ?? '';
    const check = await checkImage(top);
    expect(check.fsckClean, `${disk.target}: ${check.fsckOutput}`).toBe(true);
    expect(check.records.problems, disk.target).toEqual([]);
    expect(check.records.count).toBe(check.records.lastSeq);
    checks.push({ target: disk.target, ...check });
  }
  return checks;
}

const timings: string[] = [];
async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    timings.push(`${label}: ${Date.now() - started} ms`);
    console.log(`${label}: ${Date.now() - started} ms`);
  }
}

describe('maintenance windows', () => {
  it('enter → marker → save keeps the marker across a reboot, chain as before enter', async () => {
    const domain = await domains.create({ disks: 2 });
    await runCliOk(['backup', 'enable', domain.name], env);
    const before = await chains(domain);
    const entered = await timed('enter (running, 2 disks)', () =>
      runCliOk(['--json', 'maintenance', 'enter', domain.name], env),
    );
    const during = await chains(domain);
    expect(JSON.parse(entered.stdout)).toMatchObject({
      domain: domain.name,
      action: 'enter',
      disks: Object.entries(during).map(([target, chain]) => ({ target, chain })),
    });
    for (const disk of domain.disks) {
      expect(during[disk.target]?.slice(1)).toEqual(before[disk.target]);
      expect(path.basename(during[disk.target]?.[0] ?? '')).toMatch(/\.maintenance-\d{8}-\d{6}$/);
    }
    expect(maintenanceStatus(stateDir, domain.name)).toMatchObject({ inMaintenance: true });

    await domain.writeMarker('vda', 'upgraded');
    const saved = await timed('save (running, 2 disks)', () =>
      runCliOk(['maintenance', 'save', domain.name], env),
    );
    expect(await chains(domain)).toEqual(before);
    await expectRemoved(domain, 'maintenance', saved.stdout);
    expect(maintenanceStatus(stateDir, domain.name).inMaintenance).toBe(false);

    const checks = await checkDisks(domain);
    expect(checks.find((c) => c.target === 'vda')?.marker).toBe('upgraded');
    await domain.start();
    await domain.waitForAgent(180_000);
    await waitForSeq(domain, 'vda', 1);
    expect(await domain.guestExec(['cat', '/mnt/vda/marker'])).toBe('upgraded');
    expect(await chains(domain)).toEqual(before);
  });

  it('enter → marker → drop on the shut-off domain: marker gone, earlier records intact', async () => {
    const domain = await domains.create({ disks: 2 });
    await waitForSeq(domain, 'vda', 3);
    const before = await chains(domain);
    const seqBefore = await domain.lastSeq('vda');
    await runCliOk(['maintenance', 'enter', domain.name], env);
    const seqAtEnter = await domain.lastSeq('vda');
    await domain.writeMarker('vda', 'thrown away');
    await waitForSeq(domain, 'vda', seqAtEnter + 5);
    await domain.shutdown();

    const dropped = await timed('drop (shut off, 2 disks)', () =>
      runCliOk(['maintenance', 'drop', domain.name], env),
    );
    expect(await chains(domain)).toEqual(before);
    await expectRemoved(domain, 'maintenance', dropped.stdout);
    expect(maintenanceStatus(stateDir, domain.name).inMaintenance).toBe(false);
    const [vda] = await checkDisks(domain);
    expect(vda?.marker).toBeUndefined();
    expect(vda?.records.lastSeq).toBeGreaterThanOrEqual(seqBefore);
    expect(vda?.records.lastSeq).toBeLessThanOrEqual(seqAtEnter);

    // The shut-off paths the other way round, typed as the original script's users type them.
    await timed('enter (shut off, 2 disks)', () =>
      runCliOk(['-a', 'maintenance', '-m', 'enter', domain.name], env),
    );
    await domain.start();
    await domain.waitForAgent(180_000);
    // The agent answers before the data disks are mounted: wait for the writer.
    await waitForSeq(domain, 'vdb', 1);
    await domain.writeMarker('vdb', 'kept');
    await domain.shutdown();
    const saved = await timed('save (shut off, 2 disks)', () =>
      runCliOk(['maintenance', 'save', domain.name], env),
    );
    expect(await chains(domain)).toEqual(before);
    // Layers the earlier drop had to keep are listed in its output.
    await expectRemoved(domain, 'maintenance', `${dropped.stdout}\n${saved.stdout}`);
    const checks = await checkDisks(domain);
    expect(checks.find((c) => c.target === 'vdb')?.marker).toBe('kept');
  });

  it('enter -s → marker → drop on the running domain resumes it at its state of enter', async () => {
    const domain = await domains.create({ disks: 1 });
    const memoryDir = await mkdtemp(path.join(testRoot, 'memory-'));
    try {
      await waitForSeq(domain, 'vda', 3);
      const before = await chains(domain);
      const seqBefore = await domain.lastSeq('vda');
      await timed('enter -s (running, 1 disk)', () =>
        runCliOk(['maintenance', 'enter', '-s', memoryDir, domain.name], env),
      );
      const seqAtEnter = await domain.lastSeq('vda');
      const status = maintenanceStatus(stateDir, domain.name);
      expect(status.memoryFile).toBeDefined();
      expect(existsSync(status.memoryFile ?? '')).toBe(true);
      await domain.writeMarker('vda', 'thrown away');
      const seqLater = await waitForSeq(domain, 'vda', seqAtEnter + 20);

      const dropped = await timed('drop with memory state (running, 1 disk)', () =>
        runCliOk(['maintenance', 'drop', domain.name], env),
      );
      expect(await domain.state()).toBe('running');
      expect(await chains(domain)).toEqual(before);
      // The guest runs on from enter: its writer's sequence is back near seqAtEnter, then grows.
      const seqResumed = await domain.lastSeq('vda');
      expect(seqResumed).toBeGreaterThanOrEqual(seqBefore);
      expect(seqResumed).toBeLessThan(seqLater);
      await waitForSeq(domain, 'vda', seqResumed + 3);
      expect((await domain.guestExecResult(['cat', '/mnt/vda/marker'])).exitCode).not.toBe(0);
      expectGone(status.memoryFile ?? '', dropped.stdout);
      await expectRemoved(domain, 'maintenance', dropped.stdout);

      const [vda] = await checkDisks(domain);
      expect(vda?.marker).toBeUndefined();
      expect(vda?.records.lastSeq).toBeGreaterThan(seqResumed);
    } finally {
      await rm(memoryDir, { recursive: true, force: true });
    }
  });

  it('a drop killed after stopping the domain is finished by the next drop: running at its state of enter', async () => {
    const domain = await domains.create({ disks: 1 });
    const memoryDir = await mkdtemp(path.join(testRoot, 'memory-'));
    try {
      await waitForSeq(domain, 'vda', 3);
      const before = await chains(domain);
      await runCliOk(['maintenance', 'enter', '-s', memoryDir, domain.name], env);
      const seqAtEnter = await domain.lastSeq('vda');
      await domain.writeMarker('vda', 'thrown away');
      const seqLater = await waitForSeq(domain, 'vda', seqAtEnter + 20);

      const killed = await runCli(['maintenance', 'drop', domain.name], {
        ...env,
        UNIFI_BACKUP_FAULT_KILL_AFTER_STEP: '1',
      });
      expect(killed.exitCode).not.toBe(0);
      expect(await domain.state()).toBe('shut off');

      const finished = await runCliOk(['maintenance', 'drop', domain.name], env);
      expect(finished.stderr).toContain('interrupted');
      expect(await domain.state()).toBe('running');
      expect(await chains(domain)).toEqual(before);
      const seqResumed = await domain.lastSeq('vda');
      expect(seqResumed).toBeLessThan(seqLater);
      await waitForSeq(domain, 'vda', seqResumed + 3);
      expect((await domain.guestExecResult(['cat', '/mnt/vda/marker'])).exitCode).not.toBe(0);
      await expectRemoved(domain, 'maintenance', finished.stdout);
      expect(maintenanceStatus(stateDir, domain.name).inMaintenance).toBe(false);
      const [vda] = await checkDisks(domain);
      expect(vda?.marker).toBeUndefined();
    } finally {
      await rm(memoryDir, { recursive: true, force: true });
    }
  });

  it('drop on a running domain without memory state refuses unless --force', async () => {
    const domain = await domains.create({ disks: 1 });
    const before = await chains(domain);
    await runCliOk(['maintenance', 'enter', domain.name], env);
    await domain.writeMarker('vda', 'thrown away');
    const during = await chains(domain);

    const refused = await runCli(['maintenance', 'drop', domain.name], env);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('--force');
    expect(refused.stderr).toContain(domain.name);
    expect(await domain.state()).toBe('running');
    expect(await chains(domain)).toEqual(during);
    expect(maintenanceStatus(stateDir, domain.name).inMaintenance).toBe(true);

    const dry = await runCliOk(['--dry-run', 'maintenance', 'drop', '--force', domain.name], env);
    expect(dry.stdout).toContain('dry run');
    expect(dry.stdout).toContain('virsh destroy');
    expect(await chains(domain)).toEqual(during);

    await timed('drop --force (running, 1 disk)', () =>
      runCliOk(['maintenance', 'drop', '--force', domain.name], env),
    );
    expect(await domain.state()).toBe('running');
    expect(await chains(domain)).toEqual(before);
    await domain.waitForAgent(180_000);
    await waitForSeq(domain, 'vda', 1);
    expect((await domain.guestExecResult(['cat', '/mnt/vda/marker'])).exitCode).not.toBe(0);
    const [vda] = await checkDisks(domain);
    expect(vda?.marker).toBeUndefined();
  });

  it('backup refuses during maintenance (exit 3) unless --force; save --consolidate commits all into the base', async () => {
    const domain = await domains.create({ disks: 2 });
    await runCliOk(['backup', 'enable', domain.name], env);
    await runCliOk(['maintenance', 'enter', domain.name], env);
    const during = await chains(domain);
    const status = JSON.parse((await runCliOk(['--json', 'status', domain.name], env)).stdout) as {
      maintenance?: string;
    };
    expect(Date.parse(status.maintenance ?? '')).toBeGreaterThan(Date.now() - 600_000);
    expect((await runCliOk(['status', domain.name], env)).stdout).toMatch(/maintenance/);

    const refused = await runCli(['backup', 'incr', domain.name], env);
    expect(refused.exitCode).toBe(3);
    expect(refused.stderr).toContain('in maintenance');
    expect(await chains(domain)).toEqual(during);
    const replicaDir = path.join(domain.dir, 'replica');
    const sync = await runCli(['sync', 'full', '--target', replicaDir, domain.name], env);
    expect(sync.exitCode).toBe(3);
    expect(sync.stderr).toContain('in maintenance');
    expect(existsSync(replicaDir)).toBe(false);
    const again = await runCli(['maintenance', 'enter', domain.name], env);
    expect(again.exitCode).toBe(3);
    expect(await chains(domain)).toEqual(during);

    await runCliOk(['backup', 'incr', '--force', domain.name], env);
    const forced = await chains(domain);
    for (const disk of domain.disks) expect(forced[disk.target]?.slice(1)).toEqual(during[disk.target]);
    await domain.writeMarker('vdb', 'kept');

    // A plain save cannot tell what to merge any more; it says so and changes nothing.
    const plain = await runCli(['maintenance', 'save', domain.name], env);
    expect(plain.exitCode).toBe(1);
    expect(plain.stderr).toContain('--consolidate');
    expect(await chains(domain)).toEqual(forced);

    const consolidated = await timed('save --consolidate (running, 2 disks)', () =>
      runCliOk(['maintenance', 'save', '--consolidate', '--yes', domain.name], env),
    );
    const after = await chains(domain);
    for (const disk of domain.disks) expect(after[disk.target]).toEqual([disk.path]);
    await expectRemoved(domain, 'maintenance', consolidated.stdout);
    await expectRemoved(domain, 'incr', consolidated.stdout);
    expect(maintenanceStatus(stateDir, domain.name).inMaintenance).toBe(false);
    const checks = await checkDisks(domain);
    expect(checks.find((c) => c.target === 'vdb')?.marker).toBe('kept');
    await runCliOk(['backup', 'incr', domain.name], env);
    console.log(timings.join('\n'));
  });
});
