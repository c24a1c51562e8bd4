import type { DomainState } from '../chain/model.js';
import { isActive } from '../chain/model.js';
import type { LayerKind } from '../chain/layername.js';
import { maintenanceStatus } from './maintenance-record.js';
import { readJournal } from '../journal/journal.js';
import { blockJobPercent } from '../host/virsh.js';
import type { DomainDefinitions } from '../host/virsh.js';
import type { OpsContext } from './context.js';
import { readDomainState } from './state.js';
import type { StatusThresholds } from '../config/status.js';
import type { ResticSnapshot } from '../host/restic.js';
import { UserError } from '../errors.js';
import type { RunSummary } from './run-record.js';
import { lastRuns, summarizeRuns } from './run-record.js';
import type { ResticStatus, Verdict } from './verdict.js';
import { decideVerdict } from './verdict.js';

export interface DiskStatus {
  readonly target: string;
  /** Layers in the chain, active one included; 0 when the disk does not take part. */
  readonly chainLength: number;
  /** Bytes the chain's files occupy on the host (allocated). */
  readonly bytes: number;
  /** The block job running on the disk (running domains only), as `virsh blockjob` names it. */
  readonly blockJob?: string;
}

export interface PendingJournal {
  readonly verb: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly done: number;
  readonly steps: number;
}

export interface DomainStatus {
  readonly domain: string;
  readonly runState: string;
  readonly persistent: boolean;
  readonly disks: readonly DiskStatus[];
  /** Newest layer of each kind in any chain, as ISO time; a full backup leaves no named layer. */
  readonly lastBackup: Partial<Record<LayerKind, string>>;
  /** An interrupted run that `repair` (or the next verb) will finish. */
  readonly pendingJournal?: PendingJournal;
  /** Since when the domain runs from a maintenance layer, if it does. */
  readonly maintenance?: string;
  /** What the run records say: last success per level, last failure, failures in a row. */
  readonly runs: RunSummary;
  /** Why the run records could not be read (then `runs` is empty). */
  readonly runsError?: string;
  /** The newest restic snapshot (status --restic). */
  readonly restic?: ResticStatus;
  readonly verdict: Verdict;
  /** Why the verdict is not `ok`; empty when it is. */
  readonly reasons: readonly string[];
}

/** How `status` judges: thresholds from the config, and one host's restic snapshots with --restic. */
export interface StatusView {
  readonly thresholds: StatusThresholds;
  readonly restic?: { readonly host: string; readonly snapshots: readonly ResticSnapshot[] };
}

function newestSnapshot(view: StatusView, domain: string): ResticStatus | undefined {
  if (view.restic === undefined) return undefined;
  const newest = view.restic.snapshots.filter((s) => s.tags.includes(domain)).at(-1);
  return {
    host: view.restic.host,
    ...(newest === undefined ? {} : { newest: { id: newest.shortId, time: newest.time.toISOString() } }),
  };
}

function readRuns(stateDir: string, domain: string): { runs: RunSummary; runsError?: string } {
  try {
    return { runs: summarizeRuns(lastRuns(stateDir, domain)) };
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return { runs: summarizeRuns([]), runsError: error.message };
  }
}

function lastBackups(state: DomainState): Partial<Record<LayerKind, string>> {
  const last: Partial<Record<LayerKind, Date>> = {};
  for (const layer of state.disks.flatMap((d) => d.chain)) {
    if (layer.time === undefined || layer.kind === 'base' || layer.kind === 'foreign') continue;
    const seen = last[layer.kind];
    if (seen === undefined || layer.time > seen) last[layer.kind] = layer.time;
  }
  return Object.fromEntries(Object.entries(last).map(([k, t]) => [k, t.toISOString()]));
}

/**
 * `status` of one domain: one dominfo, one definition read, one chain query per disk and, when it
 * runs, one block-job query per disk. Read-only: no lock, no recovery.
 */
export async function domainStatus(
  ctx: OpsContext,
  domain: string,
  view: StatusView,
  prefetched?: DomainDefinitions,
): Promise<DomainStatus> {
  const state = await readDomainState(ctx.host, domain, { persistent: false, prefetched });
  const running = isActive(state);
  const disks: DiskStatus[] = [];
  for (const disk of state.disks.filter((d) => d.device === 'disk')) {
    const known = prefetched?.blockJobs;
    const job = !running
      ? undefined
      : known?.has(disk.target) === true
        ? known.get(disk.target)
        : await ctx.host.virsh.blockJobInfo(domain, disk.target).catch(() => undefined);
    disks.push({
      target: disk.target,
      chainLength: disk.chain.length,
      bytes: disk.chain.reduce((sum, layer) => sum + layer.actualSize, 0),
      ...(job === undefined
        ? {}
        : {
            blockJob: `${job.type} ${blockJobPercent(job)}%${job.ready ? ' (ready)' : ''}`,
          }),
    });
  }
  const record = readJournal(ctx.stateDir, domain);
  const window = maintenanceStatus(ctx.stateDir, state.name);
  const maintenance = window.inMaintenance ? window.since : undefined;
  const restic = newestSnapshot(view, state.name);
  const input = {
    disks,
    lastBackup: lastBackups(state),
    ...readRuns(ctx.stateDir, state.name),
    ...(restic === undefined ? {} : { restic }),
    ...(record === undefined
      ? {}
      : {
          pendingJournal: {
            verb: record.verb,
            pid: record.pid,
            startedAt: record.startedAt,
            done: record.done,
            steps: record.steps.length,
          },
        }),
    ...(maintenance === undefined ? {} : { maintenance }),
  };
  return {
    domain: state.name,
    runState: state.runState,
    persistent: state.persistent,
    ...input,
    ...decideVerdict(input, view.thresholds, ctx.now()),
  };
}
