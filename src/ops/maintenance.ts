import { existsSync } from 'node:fs';
import path from 'node:path';
import { planCommit } from '../chain/consolidate.js';
import { selectDisks } from '../chain/eligibility.js';
import { refuseDeviceDisks } from '../chain/blockdisk.js';
import { refuseManagedSave } from '../chain/managedsave.js';
import type { MaintenanceDisk } from '../chain/maintenance.js';
import { maintenancePosition, planEnter, planSave } from '../chain/maintenance.js';
import type { Disk, DomainState } from '../chain/model.js';
import type { Plan } from '../chain/plan.js';
import { isActive } from '../chain/model.js';
import { DomainBusyError, UserError } from '../errors.js';
import { fileId } from '../host/fileid.js';
import type { OpsContext } from './context.js';
import { faultAfterStep } from './fault.js';
import { domainOperation } from './frame.js';
import type { DropRequest } from './maintenance-drop.js';
import { dropWindow } from './maintenance-drop.js';
import type { MaintenanceRecord } from './maintenance-record.js';
import { clearMaintenance, readMaintenance, writeMaintenance } from './maintenance-record.js';
import type { MaintenanceResult } from './maintenance-window.js';
import { endWindow, requireRecord, resultOf, runAndCheck } from './maintenance-window.js';
import { fileReferences, quoted, useOf } from './references.js';
import { readDomainState, takenNames } from './state.js';
import { refuseRunningBlockJobs, refuseSharedBases } from './refusals.js';

export interface EnterRequest {
  readonly quiesce: boolean;
  readonly memoryDir?: string;
}

function refuseAlreadyInMaintenance(ctx: OpsContext, domain: string): void {
  const existing = readMaintenance(ctx.stateDir, domain);
  if (existing !== undefined)
    throw new DomainBusyError(
      `domain '${domain}' is already in maintenance since ${existing.since}; nothing was changed. ` +
        `End that window first: 'unifi-backup maintenance save ${domain}' keeps its changes, ` +
        `'unifi-backup maintenance drop ${domain}' throws them away.`,
    );
}

/** Enter needs a guest agent that answers (for --quiesce) or a memory file it may create. */
async function refuseUnfreezable(
  ctx: OpsContext,
  domain: string,
  state: DomainState,
  request: EnterRequest,
  memoryFile: string | undefined,
): Promise<void> {
  if (request.quiesce && memoryFile === undefined && isActive(state)) {
    if (!(await ctx.host.virsh.agentResponds(domain)))
      throw new UserError(
        `domain '${domain}': the guest agent does not answer, so --quiesce cannot freeze its filesystems. ` +
          `Nothing was changed. Start qemu-guest-agent in the guest, or run without --quiesce.`,
      );
  }
  if (memoryFile !== undefined && existsSync(memoryFile))
    throw new UserError(`${memoryFile} already exists; refusing to overwrite it. Nothing was changed.`);
}

/** `maintenance enter`: a maintenance layer on every disk, atomically; the domain is recorded as in maintenance. */
export async function enterMaintenance(
  ctx: OpsContext,
  domain: string,
  request: EnterRequest,
): Promise<MaintenanceResult> {
  const started = Date.now();
  return domainOperation(ctx, domain, { verb: 'maintenance enter', refuseInMaintenance: false }, async () => {
    refuseAlreadyInMaintenance(ctx, domain);
    const state = await readDomainState(ctx.host, domain);
    refuseManagedSave(state, 'maintenance enter');
    const { included } = selectDisks(state);
    refuseDeviceDisks(
      state,
      included,
      'maintenance',
      () => 'Shut the domain down and copy the device (or take an LVM snapshot) before the change instead.',
    );
    const { plan, disks } = planEnter(state, included, {
      now: ctx.now(),
      quiesce: request.quiesce,
      taken: takenNames(state),
      ...(request.memoryDir === undefined ? {} : { memoryDir: path.resolve(request.memoryDir) }),
    });
    const snapshot = plan.steps.find((s) => s.kind === 'snapshot');
    const memoryFile = snapshot?.kind === 'snapshot' ? snapshot.memoryFile : undefined;
    const since = ctx.now().toISOString();
    const result = resultOf(ctx, state, plan, {
      action: 'enter',
      since,
      ...(memoryFile === undefined ? {} : { memoryFile }),
      started,
    });
    if (ctx.dryRun) return result(included, []);
    await refuseUnfreezable(ctx, domain, state, request, memoryFile);
    // Written first: a crash after the snapshot must still leave the domain known to be in maintenance.
    writeMaintenance(ctx.stateDir, {
      domain: state.name,
      uuid: state.uuid,
      since,
      runState: state.runState,
      disks,
      ...(memoryFile === undefined ? {} : { memoryFile }),
      ...(state.persistent ? { persistentXml: await ctx.host.virsh.dumpXml(domain, 'inactive') } : {}),
    });
    faultAfterStep(0);
    try {
      const done = await runAndCheck(ctx, plan);
      done.finish();
      return result(done.after.disks, done.notes);
    } catch (error) {
      await forgetIfNeverEntered(ctx, domain, disks);
      throw error;
    }
  });
}

/** After a failed enter: when no disk got its maintenance layer, the domain is not in maintenance. */
async function forgetIfNeverEntered(
  ctx: OpsContext,
  domain: string,
  disks: readonly MaintenanceDisk[],
): Promise<void> {
  const state = await readDomainState(ctx.host, domain).catch(() => undefined);
  if (state === undefined) return;
  const entered = disks.some(
    (m) =>
      maintenancePosition(
        state.disks.find((d) => d.target === m.target),
        m,
      ) !== 'reverted',
  );
  if (!entered) clearMaintenance(ctx.stateDir, domain);
}

/** Committing into a parent another domain also builds on (a linked clone) would corrupt that domain. */
async function refuseSharedParents(
  ctx: OpsContext,
  domain: string,
  record: MaintenanceRecord,
): Promise<void> {
  const references = await fileReferences(ctx.host);
  for (const m of record.disks) {
    const use = useOf(references, await fileId(m.parent), m.parent, domain);
    if (use.kind === 'used')
      throw new UserError(
        `disk ${m.target} of domain '${domain}': the layer under its maintenance layer, ${m.parent}, is ` +
          `shared with ${quoted(use.by)} (a linked clone); merging into it would ` +
          `corrupt ${use.by.length > 1 ? 'them' : 'it'}. Nothing was changed. Throw the changes away with ` +
          `'unifi-backup maintenance drop ${domain}' instead.`,
      );
    if (use.kind === 'unknown')
      throw new UserError(
        `disk ${m.target} of domain '${domain}': cannot tell whether another domain builds on ${m.parent}, the ` +
          `layer under its maintenance layer: ${use.why}. Merging into it could corrupt such a domain, so nothing ` +
          `was changed. Make that chain readable (or undefine the domain that names it), then run again.`,
      );
  }
}

export interface SaveRequest {
  /** As the original script: commit the whole chain into the base, ending the backup chain. */
  readonly consolidate: boolean;
}

/** `maintenance save`: keep the changes; the chain is as it was before enter (or, consolidated, the base alone). */
export async function saveMaintenance(
  ctx: OpsContext,
  domain: string,
  request: SaveRequest,
): Promise<MaintenanceResult> {
  const started = Date.now();
  return domainOperation(ctx, domain, { verb: 'maintenance save', refuseInMaintenance: false }, async () => {
    const record = requireRecord(ctx, domain, 'save');
    const state = await readDomainState(ctx.host, domain);
    refuseManagedSave(state, 'maintenance save');
    let plan: Plan;
    let disks: readonly Disk[];
    if (request.consolidate) {
      disks = selectDisks(state).included;
      plan = {
        ...planCommit(state, disks, 'disable', {
          kind: 'incr',
          now: ctx.now(),
          quiesce: false,
          taken: new Set(),
        }),
        verb: 'maintenance-save',
      };
    } else {
      plan = planSave(state, record.disks);
      disks = state.disks;
    }
    const result = resultOf(ctx, state, plan, { action: 'save', since: record.since, started });
    if (ctx.dryRun) return result(disks, []);
    if (isActive(state))
      await refuseRunningBlockJobs(
        ctx,
        state,
        disks.filter((d) => plan.tops.has(d.target)),
      );
    if (request.consolidate) await refuseSharedBases(ctx, state, disks);
    else await refuseSharedParents(ctx, domain, record);
    const done = await runAndCheck(ctx, plan);
    const memory = await endWindow(ctx, domain, record, plan);
    done.finish();
    return result(done.after.disks, [...done.notes, ...memory]);
  });
}

/** `maintenance drop`: throw the changes away; every disk back at its state of enter. */
export async function dropMaintenance(
  ctx: OpsContext,
  domain: string,
  request: DropRequest,
): Promise<MaintenanceResult> {
  const started = Date.now();
  return domainOperation(
    ctx,
    domain,
    { verb: 'maintenance drop', refuseInMaintenance: false },
    ({ undone }) => dropWindow(ctx, domain, request, undone, started),
  );
}
