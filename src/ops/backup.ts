import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { Level } from '../chain/consolidate.js';
import { chooseLevel, planCommit, planDiff } from '../chain/consolidate.js';
import type { Disk, DomainState } from '../chain/model.js';
import { baseLayer, frozenLayers, isActive } from '../chain/model.js';
import { selectDisks } from '../chain/eligibility.js';
import { refuseManagedSave } from '../chain/managedsave.js';
import { planSnapshot } from '../chain/incr.js';
import type { Plan } from '../chain/plan.js';
import { describeStep } from '../chain/plan.js';
import { UserError } from '../errors.js';
import { setDiskSources } from '../host/domainxml.js';
import { fileId } from '../host/fileid.js';
import type { OpsContext } from './context.js';
import { executePlan } from './execute.js';
import { domainOperation } from './frame.js';
import { fileReferences, quoted, topReferencesOnce, useOf } from './references.js';
import { readDomainStateWithDefinitions } from './state.js';

export interface BackupRequest {
  /** What the user asked for; `enable` is an incr that starts a chain. */
  readonly level: Level | 'enable';
  readonly quiesce: boolean;
  readonly exclude: readonly string[];
  readonly memoryDir?: string;
  readonly maxIncr?: number;
  /** Run even while the domain is in maintenance. */
  readonly force?: boolean;
}

export interface BackupResult {
  readonly domain: string;
  /** The level that ran (an incr may become a diff under max-incr). */
  readonly level: string;
  readonly dryRun: boolean;
  readonly steps: readonly string[];
  readonly notes: readonly string[];
  /** Per disk, the chain afterwards, top (active) first. */
  readonly disks: readonly { target: string; chain: readonly string[] }[];
  readonly durationMs: number;
}

export function takenNames(state: DomainState): Set<string> {
  const folders = new Set(state.disks.flatMap((d) => d.chain.map((l) => path.dirname(l.path))));
  return new Set(
    [...folders].flatMap((folder) => readdirSync(folder).map((name) => path.join(folder, name))),
  );
}

function plan(
  ctx: OpsContext,
  state: DomainState,
  disks: readonly Disk[],
  level: Level,
  request: BackupRequest,
): Plan {
  const options = {
    kind: 'incr' as const,
    now: ctx.now(),
    quiesce: request.quiesce,
    taken: takenNames(state),
    ...(request.memoryDir === undefined ? {} : { memoryDir: path.resolve(request.memoryDir) }),
  };
  switch (level) {
    case 'incr':
      return planSnapshot(state, disks, request.level, options);
    case 'diff':
      return planDiff(state, disks, options);
    case 'full':
    case 'disable':
      return planCommit(state, disks, level, options);
  }
}

/** A disk with a block job already running (a crashed earlier run, another tool) stops the verb. */
export async function refuseRunningBlockJobs(
  ctx: OpsContext,
  state: DomainState,
  disks: readonly Disk[],
): Promise<void> {
  const jobs = await Promise.all(disks.map((disk) => ctx.host.virsh.blockJob(state.name, disk.target)));
  for (const [i, disk] of disks.entries()) {
    const job = jobs[i];
    if (job !== undefined)
      throw new UserError(
        `disk ${disk.target} of domain '${state.name}' already runs a block job (${job}). Nothing was changed. ` +
          `Wait for it (virsh blockjob '${state.name}' ${disk.target} --info) or, if it is left over from a ` +
          `crash, abort it (virsh blockjob '${state.name}' ${disk.target} --abort) and run again.`,
      );
  }
}

/**
 * Committing into a base changes what every layer above it reads: another domain whose chain holds
 * any frozen layer of this disk (a linked clone) would be corrupted.
 */
export async function refuseSharedBases(
  ctx: OpsContext,
  state: DomainState,
  disks: readonly Disk[],
): Promise<void> {
  const references = await fileReferences(ctx.host);
  for (const disk of disks) {
    const base = baseLayer(disk);
    if (!base || disk.chain.length < 2) continue;
    for (const layer of frozenLayers(disk)) {
      const use = useOf(references, await fileId(layer.path), layer.path, state.name);
      if (use.kind === 'used')
        throw new UserError(
          `disk ${disk.target} of domain '${state.name}': ${layer === base ? 'its base' : 'its layer'} ${layer.path} ` +
            `is shared with ${quoted(use.by)} (a linked clone). Committing into ${base.path} would corrupt ` +
            `${use.by.length > 1 ? 'them' : 'it'}, so nothing was changed. Use 'backup diff' to shorten the chain instead.`,
        );
      if (use.kind === 'unknown')
        throw new UserError(
          `disk ${disk.target} of domain '${state.name}': cannot tell whether another domain builds on ${layer.path}: ` +
            `${use.why}. Committing into ${base.path} could corrupt such a domain, so nothing was changed. ` +
            `Make that chain readable (or undefine the domain that names it), then run again.`,
        );
    }
  }
}

/** Freezing a layer another domain still writes to would corrupt the new chain. */
async function refuseSharedActiveLayers(
  ctx: OpsContext,
  state: DomainState,
  disks: readonly Disk[],
): Promise<void> {
  const references = await topReferencesOnce(ctx.host);
  for (const disk of disks) {
    const top = disk.chain[0]?.path;
    if (top === undefined) continue;
    const use = useOf(references, await fileId(top), top, state.name);
    if (use.kind === 'used')
      throw new UserError(
        `disk ${disk.target} of domain '${state.name}': its active layer ${top} is also a disk of ` +
          `${quoted(use.by)}. Freezing it while another domain writes to it would corrupt ` +
          `the chain, so nothing was changed. Give each domain its own disk file (or --exclude ${disk.target}).`,
      );
    if (use.kind === 'unknown')
      throw new UserError(
        `disk ${disk.target} of domain '${state.name}': cannot tell whether another domain writes to its active ` +
          `layer ${top}: ${use.why}. Nothing was changed. Make that file readable (or undefine the domain ` +
          `that names it), then run again.`,
      );
  }
}

/**
 * Checks the result against the plan (each disk runs from the planned top) and makes the persistent
 * definition match the running disks (DESIGN §4, invariant 6). The run state and persistence are
 * those read before: a verb changes neither.
 */
export async function verify(
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
  await ctx.host.virsh.define(setDiskSources(definitions.inactive, new Map(stale), formats), plan.domain);
  return {
    after: { ...after, persistentSources: new Map([...after.persistentSources, ...stale]) },
    notes: [`persistent definition updated for ${stale.map(([t]) => t).join(', ')}`],
  };
}

/** `backup incr|enable|diff|full|disable` on one domain, under its lock. */
export async function backupDomain(
  ctx: OpsContext,
  domain: string,
  request: BackupRequest,
): Promise<BackupResult> {
  return domainOperation(
    ctx,
    domain,
    { verb: `backup ${request.level}`, refuseInMaintenance: request.force !== true },
    () => backupLocked(ctx, domain, request),
  );
}

/** The same, inside a caller's domain operation (`run` keeps its lock while restic reads). */
export async function backupLocked(
  ctx: OpsContext,
  domain: string,
  request: BackupRequest,
): Promise<BackupResult> {
  const started = Date.now();
  // Started now, awaited by refuseSharedActiveLayers: every domain's disks are read (one batched
  // virsh run) while this domain's state is.
  void topReferencesOnce(ctx.host).catch(() => undefined);
  const { state, definitions } = await readDomainStateWithDefinitions(ctx.host, domain, undefined, {
    migratable: !ctx.dryRun,
  });
  refuseManagedSave(state, `backup ${request.level}`);
  const { included } = selectDisks(state, request.exclude);
  const requested = request.level === 'enable' ? 'incr' : request.level;
  const { level, note } = chooseLevel(included, requested, request.maxIncr);
  const consolidates = level !== 'incr';
  if (consolidates && isActive(state)) await refuseRunningBlockJobs(ctx, state, included);
  await refuseSharedActiveLayers(ctx, state, included);
  if (level === 'full' || level === 'disable') await refuseSharedBases(ctx, state, included);
  const thePlan = plan(ctx, state, included, level, request);
  const result = (after: readonly Disk[], notes: readonly string[]): BackupResult => ({
    domain: state.name,
    level: level === 'incr' ? request.level : level,
    dryRun: ctx.dryRun,
    steps: thePlan.steps.map(describeStep),
    notes: [...(note === undefined ? [] : [note]), ...thePlan.notes, ...notes],
    disks: after
      .filter((d) => thePlan.tops.has(d.target))
      .map((d) => ({ target: d.target, chain: d.chain.map((l) => l.path) })),
    durationMs: Date.now() - started,
  });
  if (ctx.dryRun) return result(included, []);
  if (request.quiesce && isActive(state) && !(await ctx.host.virsh.agentResponds(domain)))
    throw new UserError(
      `domain '${domain}': the guest agent does not answer, so --quiesce cannot freeze its filesystems. ` +
        `Nothing was changed. Start qemu-guest-agent in the guest, or run without --quiesce.`,
    );
  const { journal, notes } = await executePlan(ctx, thePlan, definitions);
  const verified = await verify(ctx, thePlan, state);
  journal.finish();
  return result(verified.after.disks, [...notes, ...verified.notes]);
}
