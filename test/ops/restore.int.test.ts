import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBackupOutput } from '../../src/host/restic.js';
import { programRunner, runChecked } from '../../src/host/runner.js';
import type { RestoreResult } from '../../src/ops/restore.js';
import type { RunResult } from '../../src/ops/run.js';
import { isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { useTestDomains } from '../rig/test-domains.js';
import { checkImage } from '../rig/image.js';
import { testRoot } from '../rig/rig-paths.js';
import { tryVirsh, virsh } from '../rig/virsh.js';
import type { TestRepository } from './repositories.js';
import { localRepository } from './repositories.js';
import { bootAndCheckRestored, cleanupRestored } from './restored.js';

const domains = useTestDomains();
const env = isolatedEnv();

describe('restore', () => {
  let repo: TestRepository;
  let domain: TestDomain;
  const seqs: number[] = [];

  beforeAll(async () => {
    repo = await localRepository();
    domain = await domains.create({ disks: 2, diskSizeMiB: 32 });
    await sleep(1500);
    for (const [i, level] of ['incr', 'incr', 'diff'].entries()) {
      seqs.push(await domain.lastSeq('vda'));
      await runCliOk(
        ['run', level, domain.name, '--config', repo.configFile, ...(i === 0 ? ['--init'] : [])],
        env,
      );
      await sleep(1000);
    }
  });
  afterAll(async () => {
    await cleanupRestored();
    await repo.stop();
  });

  it('refuses to overwrite a folder or a defined domain', async () => {
    const intoOriginal = await runCli(
      ['restore', domain.name, '--from', 'restic', '--config', repo.configFile],
      env,
    );
    expect(intoOriginal.exitCode).toBe(1);
    expect(intoOriginal.stderr).toContain('restore never overwrites');
    const sameName = await runCli(
      [
        'restore',
        domain.name,
        '--from',
        'restic',
        '--to',
        join(testRoot, 'nowhere-x'),
        '--define',
        '--config',
        repo.configFile,
      ],
      env,
    );
    expect(sameName.exitCode).toBe(1);
    expect(sameName.stderr).toContain(`domain '${domain.name}' is already defined (running)`);
    const full = join(testRoot, `full-${domain.name}`);
    await mkdir(full, { recursive: true });
    await writeFile(join(full, `${domain.name}-inactive.xml`), 'x');
    const busyFolder = await runCli(
      [
        'restore',
        domain.name,
        '--from',
        'restic',
        '--to',
        full,
        '--as',
        `${domain.name}-b`,
        '--config',
        repo.configFile,
      ],
      env,
    );
    expect(busyFolder.exitCode).toBe(1);
    expect(busyFolder.stderr).toContain('exists');
    await rm(full, { recursive: true, force: true });
  });

  it('restores a folder snapshot of the running domain, taken after a backup incr, as a new domain that boots with intact data', async () => {
    const seqBefore = await domain.lastSeq('vda');
    await runCliOk(['backup', 'incr', domain.name], env);
    // What resticprofile's `source:` makes: the whole folder, active layers and console log included.
    const backup = await runChecked(programRunner, {
      argv: ['restic', 'backup', '--json', '--tag', domain.name, domain.dir],
      env: { RESTIC_REPOSITORY: repo.repository, RESTIC_PASSWORD_FILE: repo.passwordFile },
    });
    const snapshot = parseBackupOutput(backup.stdout)?.snapshotId ?? '';
    const active = (await virsh('domblklist', '--domain', domain.name)).stdout;
    const result = await bootAndCheckRestored(
      { domain: domain.name, from: `restic:${snapshot}`, config: repo.configFile, env },
      [{ target: 'vda', seqAtLeast: seqBefore }],
    );
    expect(result.snapshot).toBe(snapshot.slice(0, 8));
    const restored = result.disks.flatMap((d) => d.chain.map((f) => basename(f)));
    expect(restored.length).toBeGreaterThan(2);
    for (const file of restored) expect(active).not.toContain(file);
  });

  it('restores from a folder (a restic restore made by hand) beside the original', async () => {
    const dir = join(testRoot, `dir-${domain.name}`);
    await runCliOk(
      ['restore', domain.name, '--from', 'restic', '--to', dir, '--config', repo.configFile],
      env,
    );
    const to = join(testRoot, `copy-${domain.name}`);
    const out = await runCliOk(
      ['--json', 'restore', domain.name, '--from', dir, '--to', to, '--as', `${domain.name}-copy`],
      env,
    );
    const result = JSON.parse(out.stdout) as RestoreResult;
    expect(result.disks.every((d) => d.chain.every((f) => f.startsWith(`${to}/`)))).toBe(true);
    for (const disk of result.disks) {
      const check = await checkImage(disk.chain[0] ?? '');
      expect(check.fsckClean, check.fsckOutput).toBe(true);
      expect(check.records.problems).toEqual([]);
    }
    await rm(dir, { recursive: true, force: true });
    await rm(to, { recursive: true, force: true });
  });

  it('restores into the original folder after the domain was undefined and its folder deleted', async () => {
    const seqBefore = await domain.lastSeq('vda');
    const last = JSON.parse(
      (await runCliOk(['--json', 'run', 'incr', domain.name, '--config', repo.configFile], env)).stdout,
    ) as RunResult;
    await domain.destroy();
    await tryVirsh('undefine', '--domain', domain.name);
    await rm(domain.dir, { recursive: true, force: true });
    const out = await runCliOk(
      [
        '--json',
        'restore',
        domain.name,
        '--from',
        `restic:${last.restic?.snapshotId ?? ''}`,
        '--start',
        '--config',
        repo.configFile,
      ],
      env,
    );
    const result = JSON.parse(out.stdout) as RestoreResult;
    expect(result.folder).toBe(domain.dir);
    expect(result.name).toBe(domain.name);
    expect(result.rebased).toEqual([]);
    expect(await readdir(domain.dir)).toContain(`${domain.name}-inactive.xml`);
    await domain.waitForAgent(120_000);
    await domain.shutdown(30_000);
    for (const disk of result.disks) {
      const check = await checkImage(disk.chain[0] ?? '');
      expect(check.fsckClean, check.fsckOutput).toBe(true);
      expect(check.records.problems).toEqual([]);
      if (disk.target === 'vda') expect(check.records.lastSeq).toBeGreaterThanOrEqual(seqBefore);
    }
  });
});
