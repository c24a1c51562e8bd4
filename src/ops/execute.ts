import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Merge, NewLayer, Plan, Step } from '../chain/plan.js';
import { sourceDevices, sourceFormats } from '../chain/plan.js';
import { UserError } from '../errors.js';
import { setDiskSources, snapshotXml } from '../host/domainxml.js';
import { ProcessError } from '../host/runner.js';
import { Journal } from '../journal/journal.js';
import { writeStateFile } from '../state/write.js';
import type { OpsContext } from './context.js';
import { faultAfterStep } from './fault.js';
import { purgeLayers } from './purge.js';
import type { Definitions } from './state.js';

async function writeConfigDumps(
  ctx: OpsContext,
  domain: string,
  step: Extract<Step, { kind: 'dump-config' }>,
  known: Partial<Definitions>,
) {
  // Definitions not known yet (a consolidation changed them) are read in one virsh run when the
  // name allows it.
  const missing = step.dumps.map((dump) => dump.flavour).filter((flavour) => known[flavour] === undefined);
  const batched =
    missing.length > 1 ? await ctx.host.virsh.readPlain(domain, missing, { info: false }) : undefined;
  for (const dump of step.dumps) {
    const xml =
      known[dump.flavour] ??
      batched?.xml.get(dump.flavour) ??
      (await ctx.host.virsh.dumpXml(domain, dump.flavour));
    try {
      writeStateFile(dump.file, xml);
    } catch (error) {
      if (error instanceof UserError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      throw new UserError(
        `domain '${domain}': cannot write the config dump ${dump.file} (${code ?? String(error)}). Nothing in ` +
          `the chain was changed. Check that its folder is writable and has free space (df -h, lsattr -d), then run again.`,
        { cause: error },
      );
    }
  }
}

async function createOverlays(ctx: OpsContext, domain: string, layers: readonly NewLayer[]): Promise<void> {
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
    // qemu-img's own failure (a full disk) is told with what was undone; a refusal of ours stands.
    if (error instanceof UserError && !(error instanceof ProcessError)) throw error;
    const folder = path.dirname(layers[made.length]?.file ?? layers[0]?.file ?? '.');
    throw new UserError(
      `domain '${domain}': ${error instanceof Error ? error.message : String(error)}. The new layers were removed, ` +
        `so nothing was changed. Check free space and permissions of ${folder} (df -h, lsattr -d), then run again.`,
      { cause: error },
    );
  }
}

/** A failed restore still leaves the VM running (invariant 7): booted fresh from the restored disks. */
async function restoreMemory(
  ctx: OpsContext,
  domain: string,
  step: Extract<Step, { kind: 'restore' }>,
): Promise<void> {
  try {
    const xml = await ctx.host.virsh.saveImageXml(step.memoryFile);
    const sources = new Map(step.sources.map((s) => [s.target, s.file]));
    await ctx.host.virsh.restore(
      step.memoryFile,
      setDiskSources(xml, sources, sourceFormats(step.sources), sourceDevices(step.sources)),
      domain,
    );
  } catch (error) {
    const started = await ctx.host.virsh.start(domain).then(
      () => 'it was started fresh (booted) from those disks instead',
      (startError: unknown) =>
        `starting it failed too (${startError instanceof Error ? startError.message : String(startError)}); ` +
        `start it with: virsh start '${domain}'`,
    );
    throw new UserError(
      `domain '${domain}': its disks are back at their state of 'maintenance enter', but its memory state ` +
        `${step.memoryFile} could not be restored (${error instanceof Error ? error.message : String(error)}); ` +
        `${started}. The memory state file was kept.`,
      { cause: error },
    );
  }
}

/** A pull that failed ends like one that merged: only the active layer's backing tells them apart. */
async function expectPulled(ctx: OpsContext, domain: string, merge: Merge): Promise<void> {
  const backing = (await ctx.host.qemuImg.chain(merge.top))[1]?.filename;
  if (backing === undefined || path.resolve(backing) !== path.resolve(merge.base))
    throw new UserError(
      `block pull of disk ${merge.target} of domain '${domain}' ended without merging (it failed or was ` +
        `cancelled): ${merge.top} is still backed by ${backing ?? 'nothing'}, not ${merge.base}. Nothing was ` +
        `deleted. Check the domain's log, then run: unifi-backup repair '${domain}'`,
    );
}

async function takeSnapshot(
  ctx: OpsContext,
  plan: Plan,
  step: Extract<Step, { kind: 'snapshot' }>,
): Promise<string[]> {
  const disks = [
    ...step.layers.map((l) => ({ target: l.target, file: l.file })),
    ...step.untouched.map((target) => ({ target, file: undefined })),
  ];
  const xml = snapshotXml(`unifi-backup-${plan.verb}-${ctx.now().getTime()}`, disks, step.memoryFile);
  await ctx.host.virsh.snapshotCreate(plan.domain, xml, {
    quiesce: step.quiesce,
    memory: step.memoryFile !== undefined,
  });
  return step.memoryFile === undefined ? [] : [`memory state saved to ${step.memoryFile}`];
}

/** One merge step: a block job on a running domain, qemu-img on a stopped one. */
async function merge(
  ctx: OpsContext,
  domain: string,
  step: Extract<Step, { kind: 'block-pull' | 'block-commit' | 'rebase' | 'commit' }>,
): Promise<void> {
  const { merge } = step;
  const progress = (job: string) => (percent: number) => {
    ctx.progress({ domain, target: merge.target, job, percent });
  };
  switch (step.kind) {
    case 'block-pull':
      await ctx.host.virsh.blockPull(domain, merge.target, merge.base, progress('pull'));
      await expectPulled(ctx, domain, merge);
      // A small pull can end before the first poll sees it: its end is reported all the same.
      progress('pull')(100);
      return;
    case 'block-commit':
      await ctx.host.virsh.blockCommit(domain, merge.target, merge.base, progress('commit'));
      return;
    case 'rebase':
      await ctx.host.qemuImg.rebase(merge.top, merge.base, merge.baseFormat, progress('pull'));
      return;
    case 'commit':
      await ctx.host.qemuImg.commit(merge.top, merge.base, progress('commit'));
      return;
  }
}

async function redefine(
  ctx: OpsContext,
  domain: string,
  step: Extract<Step, { kind: 'redefine' }>,
  known: Partial<Definitions>,
): Promise<void> {
  const xml = known.inactive ?? (await ctx.host.virsh.dumpXml(domain, 'inactive'));
  await ctx.host.virsh.define(
    setDiskSources(
      xml,
      new Map(step.sources.map((s) => [s.target, s.file])),
      sourceFormats(step.sources),
      sourceDevices(step.sources),
    ),
    domain,
  );
}

async function executeStep(
  ctx: OpsContext,
  plan: Plan,
  step: Step,
  known: Partial<Definitions>,
): Promise<string[]> {
  const domain = plan.domain;
  switch (step.kind) {
    case 'dump-config':
      await writeConfigDumps(ctx, domain, step, known);
      return [];
    case 'snapshot':
      return takeSnapshot(ctx, plan, step);
    case 'create-overlays':
      await createOverlays(ctx, domain, step.layers);
      return [];
    case 'block-pull':
    case 'block-commit':
    case 'rebase':
    case 'commit':
      await merge(ctx, domain, step);
      return [];
    case 'redefine':
      await redefine(ctx, domain, step, known);
      return [];
    case 'purge': {
      const { kept } = await purgeLayers(ctx, step.files);
      return kept.map((k) => `kept ${k.file}: ${k.reason}`);
    }
    case 'destroy':
      await ctx.host.virsh.destroy(domain);
      return [];
    case 'start':
      await ctx.host.virsh.start(domain);
      return [];
    case 'restore':
      await restoreMemory(ctx, domain, step);
      return [`domain resumed from the memory state ${step.memoryFile}`];
  }
}

/** Steps that change neither definition: the ones read before them still hold afterwards. */
const keepsDefinitions: ReadonlySet<Step['kind']> = new Set(['dump-config', 'create-overlays']);

/** After a block-job step failed: whether its job may still run (when libvirt cannot say, it may). */
async function blockJobLeft(ctx: OpsContext, domain: string, step: Step): Promise<boolean> {
  if (step.kind !== 'block-pull' && step.kind !== 'block-commit') return false;
  return ctx.host.virsh.blockJobInfo(domain, step.merge.target).then(
    (job) => job !== undefined,
    () => true,
  );
}

/**
 * Runs a plan step by step; `known` holds the definitions the plan was made from. The journal records the plan before the first change and each step as
 * it finishes, so an interrupted run can be finished or rolled back (DESIGN §4, invariant 2).
 */
export async function executePlan(
  ctx: OpsContext,
  plan: Plan,
  known: Partial<Definitions> = {},
): Promise<{ journal: Journal; notes: string[] }> {
  const journal = Journal.begin(ctx.stateDir, plan);
  const notes: string[] = [];
  let current = known;
  for (const step of plan.steps) {
    try {
      notes.push(...(await executeStep(ctx, plan, step, current)));
      // Definitions read with the state (under the lock) hold until a step that can change them.
      if (!keepsDefinitions.has(step.kind)) current = {};
    } catch (error) {
      // Every first step either completes or undoes itself, so nothing is left for recovery to
      // finish — except a block job QEMU runs on after virsh lost libvirtd (a daemon restart).
      if (journal.done === 0 && !(await blockJobLeft(ctx, plan.domain, step))) journal.finish();
      else if (error instanceof ProcessError)
        throw new UserError(
          `${error.message.trim()}. The journal of domain '${plan.domain}' records how far it got: once ` +
            `libvirt answers, run 'unifi-backup repair ${plan.domain}' to finish or roll back the rest.`,
          { cause: error },
        );
      throw error;
    }
    journal.stepDone();
    faultAfterStep(journal.done);
  }
  return { journal, notes };
}
