import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/config.js';
import { intervalMs, statusThresholds } from '../../src/config/status.js';
import type { RunRecord } from '../../src/ops/run-record.js';
import { summarizeRuns } from '../../src/ops/run-record.js';
import type { VerdictInput } from '../../src/ops/verdict.js';
import { ageText, decideVerdict } from '../../src/ops/verdict.js';

const now = new Date('2026-03-02T12:00:00Z');
const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000).toISOString();
const run = (h: number, over: Partial<RunRecord> = {}): RunRecord => ({
  verb: 'run',
  level: 'incr',
  start: hoursAgo(h),
  end: hoursAgo(h),
  result: 'ok',
  ...over,
});
const input = (runs: RunRecord[], over: Partial<VerdictInput> = {}): VerdictInput => ({
  disks: [{ target: 'vda', chainLength: 3 }],
  lastBackup: {},
  runs: summarizeRuns(runs),
  ...over,
});
const thresholds = statusThresholds(undefined);
const decide = (i: VerdictInput, t = thresholds) => decideVerdict(i, t, now);

describe('status verdicts', () => {
  it('ok after a recent successful backup', () => {
    expect(decide(input([run(30, { level: 'full' }), run(2)]))).toEqual({ verdict: 'ok', reasons: [] });
  });

  it('stale when the last success is older than stale-after, or there is none', () => {
    expect(decide(input([run(27)]))).toEqual({
      verdict: 'stale',
      reasons: ['the last successful backup is 1 d 3 h old (stale after 1 d 2 h)'],
    });
    expect(decide(input([])).verdict).toBe('stale');
    // A chain made before run records existed: its newest incr layer counts.
    expect(decide(input([], { lastBackup: { incr: hoursAgo(1) } })).verdict).toBe('ok');
    expect(decide(input([run(27)]), statusThresholds({ 'stale-after': '2d' })).verdict).toBe('ok');
  });

  it('failing after N failed backups in a row, naming the last error; a success resets the count', () => {
    const failed = (h: number) =>
      run(h, { result: 'failed', error: 'restic backup failed: disk full\nmore' });
    expect(decide(input([run(3), failed(1)]))).toEqual({
      verdict: 'failing',
      reasons: [`the last backup failed (run incr at ${hoursAgo(1)}: restic backup failed: disk full)`],
    });
    const twice = statusThresholds({ failures: 2 });
    expect(decide(input([run(3), failed(1)]), twice).verdict).toBe('ok');
    expect(decide(input([failed(3), failed(1)]), twice).reasons[0]).toMatch(/^the last 2 backups failed/);
    expect(decide(input([failed(3), run(1)])).verdict).toBe('ok');
  });

  it('stale when the newest restic snapshot is old or missing', () => {
    const restic = (h?: number) => ({
      host: 'h1',
      ...(h === undefined ? {} : { newest: { id: 'abcd1234', time: hoursAgo(h) } }),
    });
    expect(decide(input([run(1)], { restic: restic(1) })).verdict).toBe('ok');
    expect(decide(input([run(1)], { restic: restic(30) })).reasons).toEqual([
      'the newest restic snapshot abcd1234 is 1 d 6 h old (stale after 1 d 2 h)',
    ]);
    expect(decide(input([run(1)], { restic: restic() })).reasons).toEqual([
      "no restic snapshot of host 'h1'",
    ]);
  });

  it('attention for a pending journal, an old maintenance window, failed verify/sync, long chains', () => {
    const recent = [run(1)];
    expect(decide(input(recent, { pendingJournal: { verb: 'backup diff' } }))).toEqual({
      verdict: 'attention',
      reasons: ["an interrupted 'backup diff' is pending: run unifi-backup repair"],
    });
    expect(decide(input(recent, { maintenance: hoursAgo(2) })).verdict).toBe('ok');
    expect(decide(input(recent, { maintenance: hoursAgo(25) })).reasons).toEqual([
      'a maintenance window is open for 1 d 1 h: save or drop it',
    ]);
    const verify = run(0.5, { verb: 'verify', level: 'chain', result: 'failed', error: 'vda: corrupt' });
    expect(decide(input([...recent, verify])).verdict).toBe('attention');
    expect(decide(input([...recent, verify, run(0.1, { verb: 'verify', level: 'chain' })])).verdict).toBe(
      'ok',
    );
    expect(decide(input(recent), statusThresholds({ 'max-chain': 2 })).reasons).toEqual([
      'the chain of vda holds 3 layers (max-chain 2)',
    ]);
  });

  it('the worst verdict wins and every reason is listed', () => {
    const result = decide(
      input([run(40), run(1, { result: 'failed', error: 'x' })], { pendingJournal: { verb: 'sync full' } }),
    );
    expect(result.verdict).toBe('failing');
    expect(result.reasons).toHaveLength(3);
  });
});

describe('status thresholds in the config', () => {
  it('reads spans and rejects bad ones with the path', () => {
    expect(intervalMs('1d12h30m5s')).toBe(((36 * 60 + 30) * 60 + 5) * 1000);
    expect(ageText(90_000)).toBe('1 min');
    expect(
      statusThresholds({ 'stale-after': '90m', 'maintenance-after': '2h', failures: 3, 'max-chain': 8 }),
    ).toEqual({
      staleAfterMs: 5_400_000,
      maintenanceAfterMs: 7_200_000,
      failures: 3,
      maxChain: 8,
    });
    expect(() =>
      validateConfig('c.yaml', { status: { 'stale-after': '26 hours', failures: 0, stale: 1 } }),
    ).toThrow(
      /status\.stale-after: a span such as 26h.*\n.*status\.failures: at least 1\n.*status: Unrecognized key: "stale"/s,
    );
  });
});
