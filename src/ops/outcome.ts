import type { DomainState } from '../chain/model.js';
import type { Plan } from '../chain/plan.js';
import { UserError } from '../errors.js';
import { setDiskSources } from '../host/domainxml.js';
import type { OpsContext } from './context.js';
import { readDomainStateWithDefinitions } from './state.js';

/** What a verb that runs a plan reports for one domain: the steps run (or, dry, planned) and notes. */
export interface PlanReport {
  readonly domain: string;
  readonly dryRun: boolean;
  readonly steps: readonly string[];
  readonly notes: readonly string[];
  readonly durationMs: number;
}

/** What a verb that changes chains reports for one domain. */
export interface ChainChange extends PlanReport {
  /** Per disk, the chain afterwards, top (active) first. */
  readonly disks: readonly { target: string; chain: readonly string[] }[];
}

/**
 * Checks the result against the plan (each disk runs from the planned top) and makes the persistent
 * definition match the running disks (DESIGN §4, invariant 6). The run state and persistence are
 * those read before: a verb changes neither.
 */
export async function checkOutcome(
  ctx: OpsContext,
  plan: Plan,
  /** The state the plan was made from, when the plan does not change the run state (saves a dominfo). */
  before?: DomainState,
): Promise<{ after: DomainState; notes: string[] }> {
  const known = before && {
    name: before.name,
    uuid: before.uuid,
    runState: before.runState,
    persistent: before.persistent,
    managedSave: before.managedSave,
  };
  const { state: after, definitions } = await readDomainStateWithDefinitions(ctx.host, plan.domain, known, {
    expectedTops: plan.tops.values(),
  });
  for (const [target, file] of plan.tops) {
    const top = after.disks.find((d) => d.target === target)?.chain[0]?.path;
    if (top !== file)
      throw new UserError(
        `disk ${target} of domain '${plan.domain}' runs from ${top ?? 'nothing'} instead of ${file} after ${plan.verb}. ` +
          `Check it with: unifi-backup backup showchain '${plan.domain}'`,
      );
  }
  const stale = [...plan.tops].filter(
    ([target, file]) => after.persistent && after.persistentSources.get(target) !== file,
  );
  if (stale.length === 0 || definitions.inactive === undefined) return { after, notes: [] };
  const formats = new Map(after.disks.map((d) => [d.target, d.chain[0]?.format ?? 'qcow2']));
  const devices = new Set(after.disks.filter((d) => d.chain[0]?.device === true).map((d) => d.target));
  await ctx.host.virsh.define(
    setDiskSources(definitions.inactive, new Map(stale), formats, devices),
    plan.domain,
  );
  return {
    after: { ...after, persistentSources: new Map([...after.persistentSources, ...stale]) },
    notes: [`persistent definition updated for ${stale.map(([t]) => t).join(', ')}`],
  };
}
