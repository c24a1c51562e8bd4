import type { StatusThresholds } from '../config/status.js';
import type { RunRecord, RunSummary } from './run-record.js';

export const verdicts = ['ok', 'attention', 'stale', 'failing'] as const;
/** Worst last: `failing` beats `stale` beats `attention`. */
export type Verdict = (typeof verdicts)[number];

/** The newest restic snapshot of a domain, from one host's snapshots. */
export interface ResticStatus {
  readonly host: string;
  readonly newest?: { readonly id: string; readonly time: string };
}

/** What a verdict is decided from: a domain's status without it. */
export interface VerdictInput {
  readonly disks: readonly { readonly target: string; readonly chainLength: number }[];
  /** Newest named layer of each kind, ISO. */
  readonly lastBackup: Partial<Record<string, string>>;
  readonly runs: RunSummary;
  /** Why the run records could not be read. */
  readonly runsError?: string;
  readonly pendingJournal?: { readonly verb: string };
  /** ISO time a maintenance window was entered. */
  readonly maintenance?: string;
  readonly restic?: ResticStatus;
}

/** `1 d 2 h`, `3 h 5 min`, `42 min`, `12 s`: an age as a person reads it. */
export function ageText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return h > 0 ? `${d} d ${h} h` : `${d} d`;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  return m > 0 ? `${m} min` : `${s} s`;
}

const firstLine = (text: string | undefined) => (text ?? '').split('\n')[0] ?? '';
const said = (r: RunRecord) => `${r.verb} ${r.level} at ${r.end}: ${firstLine(r.error)}`;

/** The newest successful backup: a run record, or a named layer (a chain made before records existed). */
export function lastGoodBackup(input: VerdictInput): number | undefined {
  const times = [
    ...Object.values(input.runs.lastSuccess).map((r) => Date.parse(r.end)),
    ...['incr', 'diff'].flatMap((kind) => {
      const iso = input.lastBackup[kind];
      return iso === undefined ? [] : [Date.parse(iso)];
    }),
  ];
  return times.length === 0 ? undefined : Math.max(...times);
}

/**
 * Whether a domain is safe, and every reason it is not. Pure: `now` and the thresholds come in.
 * failing: the last N backups failed; stale: no good backup (or restic snapshot) within
 * stale-after; attention: something a person should look at that does not yet lose backups.
 */
export function decideVerdict(
  input: VerdictInput,
  thresholds: StatusThresholds,
  now: Date,
): { verdict: Verdict; reasons: string[] } {
  const found: { verdict: Verdict; reason: string }[] = [];
  const add = (verdict: Verdict, reason: string) => found.push({ verdict, reason });
  const age = (iso: string) => now.getTime() - Date.parse(iso);
  const stale = `stale after ${ageText(thresholds.staleAfterMs)}`;

  const runs = input.runs;
  if (runs.failedInRow >= thresholds.failures && runs.lastFailure !== undefined)
    add(
      'failing',
      `the last ${runs.failedInRow === 1 ? 'backup' : `${runs.failedInRow} backups`} failed (${said(runs.lastFailure)})`,
    );
  const good = lastGoodBackup(input);
  if (good === undefined) add('stale', 'no successful backup recorded');
  else if (now.getTime() - good > thresholds.staleAfterMs)
    add('stale', `the last successful backup is ${ageText(now.getTime() - good)} old (${stale})`);
  if (input.restic !== undefined) {
    const newest = input.restic.newest;
    if (newest === undefined) add('stale', `no restic snapshot of host '${input.restic.host}'`);
    else if (age(newest.time) > thresholds.staleAfterMs)
      add('stale', `the newest restic snapshot ${newest.id} is ${ageText(age(newest.time))} old (${stale})`);
  }
  if (input.runsError !== undefined) add('attention', input.runsError);
  if (input.pendingJournal !== undefined)
    add('attention', `an interrupted '${input.pendingJournal.verb}' is pending: run unifi-backup repair`);
  if (input.maintenance !== undefined && age(input.maintenance) > thresholds.maintenanceAfterMs)
    add('attention', `a maintenance window is open for ${ageText(age(input.maintenance))}: save or drop it`);
  for (const verb of ['verify', 'sync', 'maintenance'] as const) {
    const last = runs.latest[verb];
    if (last?.result === 'failed') add('attention', `the last ${said(last)}`);
  }
  const max = thresholds.maxChain;
  for (const disk of input.disks)
    if (max !== undefined && disk.chainLength > max)
      add('attention', `the chain of ${disk.target} holds ${disk.chainLength} layers (max-chain ${max})`);

  const worst = found.reduce<Verdict>(
    (v, f) => (verdicts.indexOf(f.verdict) > verdicts.indexOf(v) ? f.verdict : v),
    'ok',
  );
  return { verdict: worst, reasons: found.map((f) => f.reason) };
}
