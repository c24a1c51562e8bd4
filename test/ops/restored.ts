import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { RestoreResult } from '../../src/ops/restore.js';
import { runCliOk } from '../cli-run.js';
import { checkImage } from '../rig/image.js';
import { testRoot } from '../rig/rig-paths.js';
import { tryVirsh } from '../rig/virsh.js';
import { TestDomain } from '../rig/domain.js';

const restored = new Set<TestDomain>();

export interface RestoreCall {
  readonly domain: string;
  readonly from: string;
  readonly config: string;
  readonly env: Record<string, string>;
}

export function restoredDomain(result: RestoreResult): TestDomain {
  const domain = new TestDomain(
    result.name,
    result.folder,
    result.disks.map((d) => ({ target: d.target, path: d.chain[0] ?? '', format: 'qcow2' as const })),
    undefined,
    join(result.folder, 'console.log'),
  );
  restored.add(domain);
  return domain;
}

/**
 * Restores as a new domain beside everything else, proves the restored layers hold a clean
 * filesystem and an intact record prefix at least up to `seqAtLeast`, then boots it.
 */
export async function bootAndCheckRestored(
  call: RestoreCall,
  expected: readonly { target: string; seqAtLeast: number }[],
): Promise<RestoreResult> {
  const name = `ubt-r-${randomBytes(3).toString('hex')}`;
  const to = join(testRoot, name);
  const out = await runCliOk(
    [
      '--json',
      'restore',
      call.domain,
      '--from',
      call.from,
      '--to',
      to,
      '--as',
      name,
      '--define',
      '--config',
      call.config,
    ],
    call.env,
  );
  const result = JSON.parse(out.stdout) as RestoreResult;
  const domain = restoredDomain(result);
  expect(result.name).toBe(name);
  for (const want of expected) {
    const disk = result.disks.find((d) => d.target === want.target);
    expect(disk?.chain.every((f) => f.startsWith(`${to}/`))).toBe(true);
    const check = await checkImage(disk?.chain[0] ?? '');
    expect(check.fsckClean, check.fsckOutput).toBe(true);
    expect(check.records.problems).toEqual([]);
    expect(check.records.lastSeq).toBeGreaterThanOrEqual(want.seqAtLeast);
  }
  await domain.start();
  await domain.waitForAgent(120_000);
  expect(await domain.state()).toBe('running');
  await domain.shutdown(30_000);
  for (const disk of result.disks) {
    const check = await checkImage(disk.chain[0] ?? '');
    expect(check.fsckClean, check.fsckOutput).toBe(true);
    expect(check.records.problems).toEqual([]);
  }
  await domain.cleanup();
  restored.delete(domain);
  return result;
}

export async function cleanupRestored(): Promise<void> {
  for (const domain of [...restored]) {
    await domain.cleanup().catch(() => undefined);
    restored.delete(domain);
  }
}

export async function undefineAndRemove(name: string, dir: string): Promise<void> {
  await tryVirsh('destroy', '--domain', name);
  await tryVirsh('undefine', '--domain', name);
  await rm(dir, { recursive: true, force: true });
}
