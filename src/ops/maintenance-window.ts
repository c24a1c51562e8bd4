import { existsSync } from 'node:fs';
import type { Disk, DomainState } from '../chain/model.js';
import type { Plan } from '../chain/plan.js';
import { describeStep } from '../chain/plan.js';
import { UserError } from '../errors.js';
import type { OpsContext } from './context.js';
import { executePlan } from './execute.js';
import { faultAfterStep } from './fault.js';
import type { MaintenanceRecord } from './maintenance-record.js';
import { clearMaintenance, readMaintenance } from './maintenance-record.js';
import type { ChainChange } from './outcome.js';
import { checkOutcome } from './outcome.js';
import { purgeLayers } from './purge.js';

export type MaintenanceAction = 'enter' | 'save' | 'drop';

export interface MaintenanceResult extends ChainChange {
  readonly action: MaintenanceAction;
  /** ISO time of enter: when the window began. */
  readonly since?: string;
  readonly memoryFile?: string;
}

export function requireRecord(ctx: OpsContext, domain: string, action: MaintenanceAction): MaintenanceRecord {
  const record = readMaintenance(ctx.stateDir, domain);
  if (record === undefined)
    throw new UserError(
      `domain '${domain}' is not in maintenance, so there is nothing to ${action}. ` +
        `Start a window with: unifi-backup maintenance enter '${domain}'`,
    );
  return record;
}

/** The result of one sub-verb, built from the chains after it (or before, for a dry run). */
export function resultOf(
  ctx: OpsContext,
  state: DomainState,
  plan: Plan,
  window: { action: MaintenanceAction; since: string; memoryFile?: string; started: number },
): (after: readonly Disk[], notes: readonly string[]) => MaintenanceResult {
  return (after, notes) => ({
    domain: state.name,
    action: window.action,
    dryRun: ctx.dryRun,
    steps: plan.steps.map(describeStep),
    notes: [...plan.notes, ...notes],
    disks: after
      .filter((d) => plan.tops.has(d.target))
      .map((d) => ({ target: d.target, chain: d.chain.map((l) => l.path) })),
    since: window.since,
    ...(window.memoryFile === undefined ? {} : { memoryFile: window.memoryFile }),
    durationMs: Date.now() - window.started,
  });
}

/** Runs a plan, checks each disk runs from its planned top and the persistent definition matches. */
export async function runAndCheck(
  ctx: OpsContext,
  plan: Plan,
): Promise<{ after: DomainState; notes: string[]; finish: () => void }> {
  const { journal, notes } = await executePlan(ctx, plan);
  const verified = await checkOutcome(ctx, plan);
  return {
    after: verified.after,
    notes: [...notes, ...verified.notes],
    finish: () => {
      journal.finish();
    },
  };
}

/** A memory state is not in any chain: it goes through purgeLayers all the same (invariant 1). */
async function removeMemoryState(ctx: OpsContext, record: MaintenanceRecord): Promise<string[]> {
  if (record.memoryFile === undefined || !existsSync(record.memoryFile)) return [];
  const { removed, kept } = await purgeLayers(ctx, [record.memoryFile]);
  return [
    ...removed.map((f) => `removed the memory state ${f}`),
    ...kept.map((k) => `kept ${k.file}: ${k.reason}`),
  ];
}

/**
 * After save's or drop's plan: the memory state of enter is removed, then the record. Both count as
 * steps past the plan's last one, so a crash between them can be tested like any step.
 */
export async function endWindow(
  ctx: OpsContext,
  domain: string,
  record: MaintenanceRecord,
  plan: Plan,
): Promise<string[]> {
  const memory = await removeMemoryState(ctx, record);
  faultAfterStep(plan.steps.length + 1);
  clearMaintenance(ctx.stateDir, domain);
  faultAfterStep(plan.steps.length + 2);
  return memory;
}
