import { discardJournal, journalFile } from '../journal/journal.js';
import type { OpsContext } from './context.js';
import { domainOperation, underDomainLock } from './frame.js';
import { finishInterruptedDrop } from './maintenance-drop.js';
import { readMaintenance } from './maintenance-record.js';
import { clearStaleMounts } from './mount-teardown.js';

export interface RepairResult {
  readonly domain: string;
  readonly dryRun: boolean;
  /** What was done (or, with --dry-run, would be done); empty when nothing was left to repair. */
  readonly actions: readonly string[];
}

/** `repair`: finishes or rolls back what an interrupted run left on one domain, under its lock. */
export async function repairDomain(ctx: OpsContext, domain: string): Promise<RepairResult> {
  const frame = { verb: 'repair', refuseInMaintenance: false, repair: true };
  return domainOperation(ctx, domain, frame, async ({ actions, interruptedVerb, undone }) => {
    // A drop stops a running domain before it reverts it: rolling the journal back alone would
    // leave it stopped, and forget that it is to be resumed. The drop is finished instead.
    if (interruptedVerb === 'maintenance-drop' && readMaintenance(ctx.stateDir, domain) !== undefined) {
      const dropped = await finishInterruptedDrop(ctx, domain, undone);
      actions.push(
        `${ctx.dryRun ? 'would finish' : 'finished'} the interrupted 'maintenance drop': ${dropped.steps.join('; ') || 'nothing left to do'}`,
        ...dropped.notes,
      );
    }
    actions.push(...(await clearStaleMounts(ctx, domain)));
    return { domain, dryRun: ctx.dryRun, actions };
  });
}

/**
 * `repair --discard-journal`: a journal that cannot be read (corrupt, foreign) blocks every verb on
 * the domain. It is shown, then removed, under the domain's lock; nothing else is touched.
 */
export async function discardDomainJournal(ctx: OpsContext, domain: string): Promise<RepairResult> {
  return underDomainLock(ctx, domain, 'repair --discard-journal', () => {
    const file = journalFile(ctx.stateDir, domain);
    const held = discardJournal(ctx.stateDir, domain, ctx.dryRun);
    if (held === undefined) return { domain, dryRun: ctx.dryRun, actions: [] };
    return {
      domain,
      dryRun: ctx.dryRun,
      actions: [
        `${ctx.dryRun ? 'would discard' : 'discarded'} the journal ${file}, which held ${held}`,
        `layers an interrupted run made are not removed: check the chain with 'unifi-backup backup showchain ${domain}', then run 'unifi-backup repair ${domain}'`,
      ],
    };
  });
}
