import { waitForSeq } from '../rig/domain.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../../src/ops/run.js';
import { isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { useTestDomains } from '../rig/test-domains.js';
import type { TestRepository } from './repositories.js';
import { localRepository, restPassword, restRepository, sftpRepository } from './repositories.js';
import { bootAndCheckRestored, cleanupRestored } from './restored.js';

const domains = useTestDomains();
const env = isolatedEnv();
const diskMiB = 64;

async function run(level: string, domain: string, config: string, ...extra: string[]): Promise<RunResult> {
  const result = await runCliOk(['--json', 'run', level, domain, '--config', config, ...extra], env);
  return JSON.parse(result.stdout) as RunResult;
}

interface CycleStep {
  readonly level: string;
  /** The writers' last records just before the run: the restored data holds at least these. */
  readonly seqBefore: readonly number[];
  readonly result: RunResult;
}

describe('run: restic end to end', () => {
  let repo: TestRepository;
  let domain: TestDomain;
  const cycle: CycleStep[] = [];

  beforeAll(async () => {
    repo = await localRepository();
    domain = await domains.create({ disks: 2, diskSizeMiB: diskMiB });
    await Promise.all([waitForSeq(domain, 'vda', 3), waitForSeq(domain, 'vdb', 3)]);
  });
  afterAll(async () => {
    await cleanupRestored();
    await repo.stop();
  });

  it('cycles incr ×3, diff, incr ×2, full, incr into a local repository while the guest writes', async () => {
    const levels = ['incr', 'incr', 'incr', 'diff', 'incr', 'incr', 'full', 'incr'];
    for (const [index, level] of levels.entries()) {
      const seqBefore = await Promise.all([domain.lastSeq('vda'), domain.lastSeq('vdb')]);
      const result = await run(level, domain.name, repo.configFile, ...(index === 0 ? ['--init'] : []));
      cycle.push({ level, seqBefore, result });
      expect(result.level).toBe(level);
      expect(result.tags).toEqual([domain.name, 'kvm', level]);
      expect(result.restic?.snapshotId).toMatch(/^[0-9a-f]{8}$/);
      // exactly what `files` lists: the frozen layers and config dumps, never an active layer
      const files = await runCliOk(['files', domain.name], env);
      expect(result.files).toEqual(files.stdout.trim().split('\n'));
      for (const disk of result.prepare.disks) expect(result.files).not.toContain(disk.chain[0]);
      expect(await domain.state()).toBe('running');
      await sleep(1500);
    }
    const rows = cycle.map((c) => ({
      level: c.level,
      files: c.result.files.length,
      readMiB: ((c.result.restic?.bytesRead ?? 0) / 2 ** 20).toFixed(2),
      addedMiB: ((c.result.restic?.bytesAdded ?? 0) / 2 ** 20).toFixed(2),
      processedMiB: ((c.result.restic?.bytesProcessed ?? 0) / 2 ** 20).toFixed(2),
      prepareS: (c.result.phases.prepareMs / 1000).toFixed(1),
      resticS: (c.result.phases.resticMs / 1000).toFixed(1),
    }));
    console.table(rows);
    // each incr after the first reads only the newly frozen layer: a small fraction of the disks
    const diskBytes = 2 * diskMiB * 2 ** 20;
    for (const step of cycle.slice(1).filter((c) => c.level === 'incr')) {
      expect(step.result.restic?.filesUnmodified).toBeGreaterThan(0);
      expect(step.result.restic?.bytesRead).toBeLessThan(diskBytes * 0.1);
    }
    const verify = await runCliOk(['verify', domain.name, '--restic', '--config', repo.configFile], env);
    expect(verify.stdout).toContain('holds all');
  });

  it('restores several snapshots as new domains that boot with clean filesystems and intact records', async () => {
    const picks = [cycle[1], cycle[3], cycle[7]].filter((c) => c !== undefined);
    expect(picks).toHaveLength(3);
    for (const step of picks) {
      const snapshot = step.result.restic?.snapshotId ?? '';
      await bootAndCheckRestored(
        { domain: domain.name, from: `restic:${snapshot}`, config: repo.configFile, env },
        domain.disks.map((d, i) => ({ target: d.target, seqAtLeast: step.seqBefore[i] ?? 1 })),
      );
    }
  });

  it('applies retention per domain with keep-last and prune', async () => {
    const config = await repo.writeConfig({ retention: { 'keep-last': 3, prune: true } });
    const result = await run('incr', domain.name, config);
    expect(result.retention?.kept).toBe(3);
    expect(result.retention?.removed.length).toBe(cycle.length + 1 - 3);
    await runCliOk(['verify', domain.name, '--restic', '--config', config], env);
  });

  for (const make of [sftpRepository, restRepository]) {
    it(`backs up to a ${make === sftpRepository ? 'sftp' : 'REST'} repository`, async () => {
      const remote = await make();
      try {
        const first = await run('incr', domain.name, remote.configFile, '--init');
        const second = await run('incr', domain.name, remote.configFile);
        expect(second.parent).toBeDefined();
        expect(second.restic?.filesUnmodified).toBeGreaterThan(0);
        expect(second.restic?.bytesRead).toBeLessThan(first.restic?.bytesRead ?? 0);
        await runCliOk(['verify', domain.name, '--restic', '--config', remote.configFile], env);
      } finally {
        await remote.stop();
      }
    });
  }

  it('fails clearly on a wrong password or an unreachable repository; the chain stays valid and the next run succeeds', async () => {
    const rest = await restRepository();
    try {
      await run('incr', domain.name, rest.configFile, '--init');
      const wrong = `${rest.dir}/wrong-password`;
      await (await import('node:fs/promises')).writeFile(wrong, 'not the password\n');
      const badPassword = await rest.writeConfig({}, { 'password-file': wrong });
      const unreachable = await rest.writeConfig(
        {},
        { repository: 'rest:http://backup:' + restPassword + '@127.0.0.1:9/' },
      );
      for (const [config, pattern] of [
        [badPassword, /wrong password/],
        [unreachable, /connection refused|unable to open|Is there a repository/i],
      ] as const) {
        const failed = await runCli(['run', 'incr', domain.name, '--config', config], env);
        expect(failed.exitCode).toBe(1);
        expect(failed.stderr).toMatch(pattern);
        expect(failed.stderr).not.toContain(restPassword);
        expect(failed.stderr).not.toContain('internal error');
        expect(await domain.state()).toBe('running');
        await runCliOk(['verify', domain.name], env);
      }
      const next = await run('incr', domain.name, rest.configFile);
      expect(next.restic?.snapshotId).toBeDefined();
      await runCliOk(['verify', domain.name, '--restic', '--config', rest.configFile], env);
    } finally {
      await rest.stop();
    }
  });
});
