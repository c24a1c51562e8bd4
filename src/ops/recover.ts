import { rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { Step } from '../chain/plan.js';
import { clearJournal, readJournal } from '../journal/journal.js';
import type { OpsContext } from './context.js';
import { referencedFiles } from './references.js';

function createdFiles(step: Step): string[] {
  if (step.kind === 'snapshot') return step.layers.map((l) => l.file);
  if (step.kind === 'create-overlays') return step.layers.map((l) => l.file);
  return [];
}

/**
 * Finishes what an interrupted run left behind on this domain (DESIGN §4, invariant 2): overlays
 * that were made but never joined a chain are removed; files in a chain are kept. Returns what it did.
 */
export async function recoverInterrupted(ctx: OpsContext, domain: string): Promise<string[]> {
  const record = readJournal(ctx.stateDir, domain);
  if (!record) return [];
  const actions = [
    `an earlier '${record.verb}' (pid ${record.pid}, ${record.startedAt}) was interrupted after step ${record.done} of ${record.steps.length}`,
  ];
  const candidates = record.steps.flatMap(createdFiles).filter((f) => existsSync(f));
  if (candidates.length > 0) {
    const referenced = await referencedFiles(ctx.host);
    for (const file of candidates) {
      if (referenced.has(file)) {
        actions.push(`kept ${file}: it is part of the chain`);
      } else if (ctx.dryRun) {
        actions.push(`would remove orphan overlay ${file}`);
      } else {
        await rm(file, { force: true });
        actions.push(`removed orphan overlay ${file} (no chain references it)`);
      }
    }
  }
  if (!ctx.dryRun) clearJournal(ctx.stateDir, domain);
  return actions;
}
