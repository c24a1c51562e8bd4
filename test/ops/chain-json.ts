import { expect } from 'vitest';
import type { TestDomain } from '../rig/domain.js';
import { checkImage } from '../rig/image.js';
import { runCliOk } from '../cli-run.js';

export interface JsonLayer {
  path: string;
  kind: string;
  active: boolean;
  actualSize: number;
}

export interface JsonChain {
  domain: string;
  runState: string;
  disks: { target: string; layers: JsonLayer[] }[];
}

/** The chain as `backup showchain --json` reports it. */
export async function chainOf(domain: string, env?: Record<string, string>): Promise<JsonChain> {
  const { stdout } = await runCliOk(['--json', 'backup', 'showchain', domain], env);
  return JSON.parse(stdout) as JsonChain;
}

/** Per disk, the kinds top to base, e.g. `{ vda: ['incr', 'diff', 'base'] }`. */
export function shapeOf(chain: JsonChain): Record<string, string[]> {
  return Object.fromEntries(chain.disks.map((d) => [d.target, d.layers.map((l) => l.kind)]));
}

export function layerPaths(chain: JsonChain): string[] {
  return chain.disks.flatMap((d) => d.layers.map((l) => l.path));
}

/**
 * The guest's data in an image (any layer of a chain) is sound: the filesystem is clean and the
 * writer's records form an intact prefix with at least `minRecords` of them.
 */
export async function expectDataIntact(image: string, minRecords = 1): Promise<number> {
  const check = await checkImage(image);
  expect(check.fsckClean, `${image}: ${check.fsckOutput}`).toBe(true);
  expect(check.records.problems, image).toEqual([]);
  expect(check.records.ok).toBe(true);
  expect(check.records.count).toBeGreaterThanOrEqual(minRecords);
  return check.records.lastSeq;
}

/** Shuts the guest down and checks every disk's data through its whole chain. */
export async function shutdownAndCheck(domain: TestDomain, minRecords = 1): Promise<void> {
  await domain.shutdown();
  const chain = await chainOf(domain.name);
  for (const disk of chain.disks) await expectDataIntact(disk.layers[0]?.path ?? '', minRecords);
}
