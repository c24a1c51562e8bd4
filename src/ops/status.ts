import type { DomainState } from '../chain/model.js';
import { isActive } from '../chain/model.js';
import type { LayerKind } from '../chain/layername.js';
import { maintenanceStatus } from './maintenance-record.js';
import { readJournal } from '../journal/journal.js';
import type { DomainDefinitions } from '../host/virsh.js';
import type { OpsContext } from './context.js';
import { readDomainState } from './state.js';

export interface DiskStatus {
  readonly target: string;
  /** Layers in the chain, active one included; 0 when the disk does not take part. */
  readonly chainLength: number;
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
      ...(job === undefined
        ? {}
        : {
            blockJob: `${job.type} ${job.end > 0 ? Math.floor((job.cur / job.end) * 100) : 0}%${job.ready ? ' (ready)' : ''}`,
          }),
    });
  }
  const record = readJournal(ctx.stateDir, domain);
  const window = maintenanceStatus(ctx.stateDir, state.name);
  const maintenance = window.inMaintenance ? window.since : undefined;
  return {
    domain: state.name,
    runState: state.runState,
    persistent: state.persistent,
    disks,
    lastBackup: lastBackups(state),
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
}
