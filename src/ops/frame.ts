import type { Step } from '../chain/plan.js';
import { readJournal } from '../journal/journal.js';
import { lockDomain } from '../lock/lock.js';
import type { OpsContext } from './context.js';
import { faultHoldLock } from './fault.js';
import { refuseInMaintenance } from './maintenance-record.js';
import { recoverInterrupted } from './recover.js';

/** How a mutating verb enters its domain operation. */
export interface OperationFrame {
  /** The verb as the lock and the maintenance refusal name it ("backup incr"). */
  readonly verb: string;
  /** Refuse (exit 3) while the domain is in maintenance; false for --force and the maintenance verbs. */
  readonly refuseInMaintenance: boolean;
  /**
   * `repair`: recovery also reports what it keeps and reconciles without a journal, and its actions
   * are handed to the operation instead of logged.
   */
  readonly repair?: boolean;
}

/** What the frame hands the operation. */
export interface Recovered {
  /** What recovery did (or, in a dry run, would do). */
  readonly actions: string[];
  /** The verb of the interrupted run's journal, if one was left. */
  readonly interruptedVerb?: string;
  /** The steps the interrupted run left undone, read before recovery cleared its journal. */
  readonly undone: readonly Step[];
}

/**
 * The one frame of every mutating verb on one domain (DESIGN §4): the domain's lock, the
 * maintenance refusal, then recovery of what an interrupted run left behind, then the operation.
 * A dry run takes no lock and changes nothing: recovery reports what it would do.
 */
export async function domainOperation<T>(
  ctx: OpsContext,
  domain: string,
  frame: OperationFrame,
  operation: (recovered: Recovered) => Promise<T>,
): Promise<T> {
  return underDomainLock(ctx, domain, frame.verb, async () => {
    if (frame.refuseInMaintenance) refuseInMaintenance(ctx.stateDir, domain, frame.verb);
    const journal = readJournal(ctx.stateDir, domain);
    const actions = await recoverInterrupted(ctx, domain, journal, { repair: frame.repair === true });
    if (frame.repair !== true) for (const action of actions) ctx.log(`${domain}: ${action}`);
    return operation({
      actions,
      ...(journal === undefined ? {} : { interruptedVerb: journal.verb }),
      undone: journal?.steps.slice(journal.done) ?? [],
    });
  });
}

/** The domain's lock alone (no lock for a dry run), for the few operations that must not recover first. */
export async function underDomainLock<T>(
  ctx: OpsContext,
  domain: string,
  verb: string,
  operation: () => Promise<T> | T,
): Promise<T> {
  const lock = ctx.dryRun ? undefined : await lockDomain(ctx.lockDir, domain, verb);
  try {
    if (lock) await faultHoldLock();
    return await operation();
  } finally {
    lock?.release();
  }
}
