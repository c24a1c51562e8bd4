import { existsSync } from 'node:fs';
import type { Step } from '../chain/plan.js';
import { DomainBusyError } from '../errors.js';
import { clearJournal, readJournal } from '../journal/journal.js';
import type { OpsContext } from './context.js';
import { purgeLayers } from './purge.js';

/** Files an interrupted step may have made or left to delete: each is removed only if unreferenced. */
function filesToReconsider(step: Step): string[] {
  switch (step.kind) {
    case 'snapshot':
    case 'create-overlays':
      return step.layers.map((l) => l.file);
    case 'purge':
      return [...step.files];
    default:
      return [];
  }
}

function blockJobTargets(steps: readonly Step[]): string[] {
  return steps.flatMap((s) => (s.kind === 'block-pull' || s.kind === 'block-commit' ? [s.merge.target] : []));
}

/**
 * Finishes what an interrupted run left behind on this domain (DESIGN §4, invariant 2): layers that
 * were made but never joined a chain, or were due for deletion, are removed once no chain references
 * them; everything in a chain is kept. A block job still running in QEMU is waited for, not touched.
 */
export async function recoverInterrupted(ctx: OpsContext, domain: string): Promise<string[]> {
  const record = readJournal(ctx.stateDir, domain);
  if (!record) return [];
  for (const target of blockJobTargets(record.steps)) {
    const job = await ctx.host.virsh.blockJob(domain, target).catch(() => undefined);
    if (job !== undefined)
      throw new DomainBusyError(
        `domain '${domain}': disk ${target} still runs a block job left by an interrupted '${record.verb}' (${job}). ` +
          `Wait for it to finish (virsh blockjob '${domain}' ${target} --info), then run again.`,
      );
  }
  const actions = [
    `an earlier '${record.verb}' (pid ${record.pid}, ${record.startedAt}) was interrupted after step ${record.done} of ${record.steps.length}`,
  ];
  const candidates = [...new Set(record.steps.flatMap(filesToReconsider))].filter((f) => existsSync(f));
  if (ctx.dryRun) actions.push(...candidates.map((f) => `would remove ${f} unless a chain references it`));
  else if (candidates.length > 0) {
    const { removed } = await purgeLayers(ctx, candidates);
    actions.push(...removed.map((f) => `removed ${f}: no chain references it`));
  }
  if (!ctx.dryRun) clearJournal(ctx.stateDir, domain);
  return actions;
}
