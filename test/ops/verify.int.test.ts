import { open, rename } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VerifyReport } from '../../src/ops/verify.js';
import { isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { useTestDomains } from '../rig/test-domains.js';
import type { TestRepository } from './repositories.js';
import { localRepository } from './repositories.js';

const domains = useTestDomains();
const env = isolatedEnv();

/** Overwrites the layer's L1 table pointer region and refcount table with garbage. */
async function corrupt(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const header = Buffer.alloc(64);
    await handle.read(header, 0, 64, 0);
    const refcountTable = Number(header.readBigUInt64BE(48));
    await handle.write(Buffer.alloc(512, 0xa5), 0, 512, refcountTable);
  } finally {
    await handle.close();
  }
}

describe('verify', () => {
  let repo: TestRepository;
  let domain: TestDomain;
  let frozen: string[];

  beforeAll(async () => {
    repo = await localRepository();
    domain = await domains.create({ disks: 1, diskSizeMiB: 32 });
    await sleep(1000);
    for (const level of ['incr', 'incr', 'incr'])
      await runCliOk(['run', level, domain.name, '--config', repo.configFile, '--init'], env);
    const chain = JSON.parse((await runCliOk(['--json', 'chain', domain.name], env)).stdout) as {
      disks: { layers: { path: string; active: boolean }[] }[];
    };
    frozen = chain.disks[0]?.layers.filter((l) => !l.active).map((l) => l.path) ?? [];
    expect(frozen).toHaveLength(3);
  });
  afterAll(async () => {
    await repo.stop();
  });

  it('passes a healthy running domain, with and without --restic', async () => {
    const plain = JSON.parse((await runCliOk(['--json', 'verify', domain.name], env)).stdout) as VerifyReport;
    expect(plain.problems).toEqual([]);
    const withRestic = await runCliOk(['verify', domain.name, '--restic', '--config', repo.configFile], env);
    expect(withRestic.stdout).toContain('holds all 3 frozen layers');
    expect(withRestic.stdout).toContain('restic check');
  });

  it('reports a frozen layer that is not in the latest snapshot', async () => {
    await runCliOk(['backup', 'incr', domain.name], env);
    const result = await runCli(['verify', domain.name, '--restic', '--config', repo.configFile], env);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/does not hold frozen layer .*incr-/);
  });

  it('catches a corrupted layer and a missing backing file, naming them', async () => {
    await domain.destroy();
    const middle = frozen[1] ?? '';
    await corrupt(middle);
    const corrupted = await runCli(['verify', domain.name], env);
    expect(corrupted.exitCode).toBe(1);
    expect(corrupted.stdout).toContain(`qemu-img check of ${middle} failed`);
    expect(corrupted.stderr).toContain(`domain '${domain.name}'`);

    const base = frozen.at(-1) ?? '';
    await rename(base, `${base}.gone`);
    const missing = await runCli(['--json', 'verify', domain.name], env);
    expect(missing.exitCode).toBe(1);
    const report = JSON.parse(missing.stdout) as VerifyReport;
    expect(report.problems.join('\n')).toContain(`backing file ${base} of`);
    expect(report.problems.join('\n')).toContain('is missing');
  });
});
