import type { Disk, DomainState } from '../chain/model.js';
import { baseLayer, frozenLayers } from '../chain/model.js';
import { UserError } from '../errors.js';
import { fileId } from '../host/fileid.js';
import { blockJobPercent } from '../host/virsh.js';
import type { BlockJobInfo } from '../host/virsh.js';
import type { OpsContext } from './context.js';
import { fileReferences, quoted, topReferencesOnce, useOf } from './references.js';

/* What stops a verb before it changes a chain: refusals shared by backup and maintenance. */

/** A disk with a block job already running (a crashed earlier run, another tool) stops the verb. */
export async function refuseRunningBlockJobs(
  ctx: OpsContext,
  state: DomainState,
  disks: readonly Disk[],
): Promise<void> {
  const jobs = await Promise.all(disks.map((disk) => ctx.host.virsh.blockJobInfo(state.name, disk.target)));
  for (const [i, disk] of disks.entries()) {
    const job = jobs[i];
    if (job !== undefined)
      throw new UserError(
        `disk ${disk.target} of domain '${state.name}' already runs a block job (${describeJob(job)}). ` +
          `Nothing was changed. ` +
          `Wait for it (virsh blockjob '${state.name}' ${disk.target} --info) or, if it is left over from a ` +
          `crash, abort it (virsh blockjob '${state.name}' ${disk.target} --abort) and run again.`,
      );
  }
}

/** A block job as `virsh blockjob --info` words it: `Block Pull: [ 45 %]`. */
function describeJob(job: BlockJobInfo): string {
  return `${job.type}: [${String(blockJobPercent(job)).padStart(3)} %]`;
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
export async function refuseSharedActiveLayers(
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
