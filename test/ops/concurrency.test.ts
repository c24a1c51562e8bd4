import { describe, expect, it } from 'vitest';
import { NoQcow2DiskError } from '../../src/chain/eligibility.js';
import { createHost } from '../../src/host/host.js';
import type { Runner } from '../../src/host/runner.js';
import { forEachDomain } from '../../src/ops/all.js';
import { mapConcurrently } from '../../src/ops/concurrency.js';
import type { OpsContext } from '../../src/ops/context.js';

/** Resolves after `turns` trips through the event loop, so finishing order can be arranged. */
async function settle(turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

function tracker() {
  let running = 0;
  const seen = { peak: 0, started: [] as number[] };
  const work = async (turns: number, index: number) => {
    seen.started.push(index);
    running++;
    seen.peak = Math.max(seen.peak, running);
    await settle(turns);
    running--;
    return `done ${index}`;
  };
  return { seen, work };
}

describe('mapConcurrently', () => {
  it('runs at most `limit` at once and keeps the order of the items', async () => {
    const { seen, work } = tracker();
    const results = await mapConcurrently([5, 1, 4, 1, 3, 2, 1], 3, work);
    expect(results).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `done ${i}`));
    expect(seen.peak).toBe(3);
    expect(seen.started).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('runs one at a time with limit 1, and copes with a limit above the item count', async () => {
    const one = tracker();
    await mapConcurrently([2, 1, 2], 1, one.work);
    expect(one.seen.peak).toBe(1);
    const many = tracker();
    expect(await mapConcurrently([1, 1], 8, many.work)).toEqual(['done 0', 'done 1']);
    expect(many.seen.peak).toBe(2);
    expect(await mapConcurrently([], 4, many.work)).toEqual([]);
  });
});

function contextWith(domains: readonly string[], jobs: number): OpsContext {
  const runner: Runner = ({ argv }) =>
    Promise.resolve({ argv, exitCode: 0, stdout: domains.map((d) => `${d}\n`).join(''), stderr: '' });
  return {
    host: createHost('test:///default', runner),
    lockDir: '/nonexistent',
    stateDir: '/nonexistent',
    dryRun: true,
    log: () => undefined,
    progress: () => undefined,
    now: () => new Date(0),
    jobs,
  };
}

describe("forEachDomain over 'all' with jobs", () => {
  it('goes on past failures and reports every domain in list order', async () => {
    const ctx = contextWith(['a', 'b', 'c', 'd', 'e'], 3);
    let running = 0;
    let peak = 0;
    const outcomes = await forEachDomain(ctx, 'all', async (domain) => {
      running++;
      peak = Math.max(peak, running);
      await settle(domain === 'a' ? 6 : 1);
      running--;
      if (domain === 'b') throw new Error('b broke');
      if (domain === 'd') throw new NoQcow2DiskError('d has no qcow2 disk');
      return domain.toUpperCase();
    });
    expect(peak).toBe(3);
    expect(outcomes.map((o) => [o.domain, o.status])).toEqual([
      ['a', 'ok'],
      ['b', 'failed'],
      ['c', 'ok'],
      ['d', 'skipped'],
      ['e', 'ok'],
    ]);
    expect(outcomes[1]?.status === 'failed' && outcomes[1].error.message).toBe('b broke');
  });
});
