import { lockDomain } from '../lock/lock.js';
import type { OpsContext } from './context.js';
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
    const actions = await recoverInterrupted(ctx, domain, { repair: true });
    return { domain, dryRun: ctx.dryRun, actions };
  } finally {
    lock?.release();
  }
}
