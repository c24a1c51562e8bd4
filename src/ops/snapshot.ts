import { existsSync, readdirSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { selectDisks } from '../chain/eligibility.js';
import type { LayerKind } from '../chain/layername.js';
import type { DomainState } from '../chain/model.js';
import { isActive } from '../chain/model.js';
import type { NewLayer, Plan, Step } from '../chain/plan.js';
import { describeStep, planSnapshot } from '../chain/plan.js';
import { UserError } from '../errors.js';
import { setDiskSources, snapshotXml } from '../host/domainxml.js';
import { Journal } from '../journal/journal.js';
import { lockDomain } from '../lock/lock.js';
import type { OpsContext } from './context.js';
import { recoverInterrupted } from './recover.js';
import { readDomainState } from './state.js';

export interface SnapshotRequest {
  readonly verb: string;
  readonly kind: LayerKind;
  readonly quiesce: boolean;
  readonly exclude: readonly string[];
}

export interface SnapshotResult {
  readonly domain: string;
  readonly verb: string;
  readonly dryRun: boolean;
  readonly steps: readonly string[];
  readonly notes: readonly string[];
  /** Per disk: the layer that was frozen and the new active layer. */
  readonly disks: readonly { target: string; frozen: string; active: string }[];
  readonly durationMs: number;
}

function takenNames(state: DomainState): Set<string> {
  const folders = new Set(state.disks.flatMap((d) => d.chain.map((l) => path.dirname(l.path))));
  return new Set(
    [...folders].flatMap((folder) => readdirSync(folder).map((name) => path.join(folder, name))),
  );
}

async function writeConfigDump(
  ctx: OpsContext,
  domain: string,
  step: Extract<Step, { kind: 'dump-config' }>,
) {
  for (const dump of step.dumps) {
    const xml = await ctx.host.virsh.dumpXml(domain, dump.flavour);
    const temp = `${dump.file}.tmp`;
    await writeFile(temp, xml, { mode: 0o600 });
    await rename(temp, dump.file);
  }
}

async function createOverlays(ctx: OpsContext, layers: readonly NewLayer[]): Promise<void> {
  const made: string[] = [];
  try {
    for (const layer of layers) {
      if (existsSync(layer.file))
        throw new UserError(`${layer.file} already exists; refusing to overwrite it.`);
      await ctx.host.qemuImg.createOverlay(layer.file, layer.backing, layer.backingFormat);
      made.push(layer.file);
    }
  } catch (error) {
    // Not yet in any definition: removing them returns the domain to exactly where it was.
    await Promise.all(made.map((file) => rm(file, { force: true })));
    throw error;
  }
}

async function executeStep(ctx: OpsContext, state: DomainState, step: Step, plan: Plan): Promise<void> {
  switch (step.kind) {
    case 'dump-config':
      return writeConfigDump(ctx, state.name, step);
    case 'snapshot': {
      const name = `unifi-backup-${plan.verb}-${ctx.now().getTime()}`;
      const disks = [
        ...step.layers.map((l) => ({ target: l.target, file: l.file })),
        ...step.untouched.map((target) => ({ target, file: undefined })),
      ];
      await ctx.host.virsh.snapshotCreate(state.name, snapshotXml(name, disks), {
        quiesce: step.quiesce,
        memory: false,
      });
      return;
    }
    case 'create-overlays':
      return createOverlays(ctx, step.layers);
    case 'redefine': {
      const xml = await ctx.host.virsh.dumpXml(state.name, 'inactive');
      await ctx.host.virsh.define(
        setDiskSources(xml, new Map(step.sources.map((s) => [s.target, s.file]))),
        state.name,
      );
      return;
    }
  }
}

/**
 * Checks the result against the plan (the chain is what we meant it to be) and makes the persistent
 * definition match the running disks (DESIGN §4, invariant 6).
 */
async function verifyTops(ctx: OpsContext, plan: Plan): Promise<string[]> {
  const after = await readDomainState(ctx.host, plan.domain);
  const notes: string[] = [];
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
  if (stale.length > 0) {
    const xml = await ctx.host.virsh.dumpXml(plan.domain, 'inactive');
    await ctx.host.virsh.define(setDiskSources(xml, new Map(stale)), plan.domain);
    notes.push(`persistent definition updated for ${stale.map(([t]) => t).join(', ')}`);
  }
  return notes;
}

/** `backup incr` / `backup enable`: freeze every disk's active layer under a new one. */
export async function snapshotDomain(
  ctx: OpsContext,
  domain: string,
  request: SnapshotRequest,
): Promise<SnapshotResult> {
  const started = Date.now();
  const lock = ctx.dryRun ? undefined : await lockDomain(ctx.lockDir, domain, `backup ${request.verb}`);
  try {
    for (const action of await recoverInterrupted(ctx, domain)) ctx.log(`${domain}: ${action}`);
    const state = await readDomainState(ctx.host, domain);
    const { included } = selectDisks(state, request.exclude);
    const plan = planSnapshot(state, included, request.verb, {
      kind: request.kind,
      now: ctx.now(),
      quiesce: request.quiesce,
      taken: takenNames(state),
    });
    const result = (notes: readonly string[]): SnapshotResult => ({
      domain: state.name,
      verb: request.verb,
      dryRun: ctx.dryRun,
      steps: plan.steps.map(describeStep),
      notes,
      disks: included.map((d) => ({
        target: d.target,
        frozen: d.chain[0]?.path ?? '',
        active: plan.tops.get(d.target) ?? '',
      })),
      durationMs: Date.now() - started,
    });
    if (ctx.dryRun) return result(plan.notes);
    if (request.quiesce && isActive(state) && !(await ctx.host.virsh.agentResponds(domain)))
      throw new UserError(
        `domain '${domain}': the guest agent does not answer, so --quiesce cannot freeze its filesystems. ` +
          `Nothing was changed. Start qemu-guest-agent in the guest, or run without --quiesce.`,
      );
    const journal = Journal.begin(ctx.stateDir, plan);
    for (const step of plan.steps) {
      await executeStep(ctx, state, step, plan);
      journal.stepDone();
    }
    const notes = [...plan.notes, ...(await verifyTops(ctx, plan))];
    journal.finish();
    return result(notes);
  } finally {
    lock?.release();
  }
}
