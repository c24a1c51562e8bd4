import { readJournal } from '../journal/journal.js';
import { lockDomain } from '../lock/lock.js';
import type { OpsContext } from './context.js';
import { finishInterruptedDrop } from './maintenance.js';
import { readMaintenance } from './maintenance-record.js';
import { recoverInterrupted } from './recover.js';

export interface RepairResult {
  readonly domain: string;
  readonly dryRun: boolean;
  /** What was done (or, with --dry-run, would be done); empty when nothing was left to repair. */
  readonly actions: readonly string[];
}

/** `repair`: finishes or rolls back what an interrupted run left on one domain, under its lock. */
export async function repairDomain(ctx: OpsContext, domain: string): Promise<RepairResult> {
  const lock = ctx.dryRun ? undefined : await lockDomain(ctx.lockDir, domain, 'repair');
  try {
    const journal = readJournal(ctx.stateDir, domain);
    const actions = await recoverInterrupted(ctx, domain, { repair: true });
    // A drop stops a running domain before it reverts it: rolling the journal back alone would
    // leave it stopped, and forget that it is to be resumed. The drop is finished instead.
    if (journal?.verb === 'maintenance-drop' && readMaintenance(ctx.stateDir, domain) !== undefined) {
      const dropped = await finishInterruptedDrop(ctx, domain, journal.steps.slice(journal.done));
      actions.push(
        `${ctx.dryRun ? 'would finish' : 'finished'} the interrupted 'maintenance drop': ${dropped.steps.join('; ') || 'nothing left to do'}`,
        ...dropped.notes,
      );
    }
    return { domain, dryRun: ctx.dryRun, actions };
  } finally {
    lock?.release();
  }
}
