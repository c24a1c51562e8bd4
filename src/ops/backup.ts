import path from 'node:path';
import type { Level } from '../chain/consolidate.js';
import { chooseLevel, planCommit, planDiff } from '../chain/consolidate.js';
import type { Disk, DomainState } from '../chain/model.js';
import { isActive } from '../chain/model.js';
import { selectDisks } from '../chain/eligibility.js';
import { refuseManagedSave } from '../chain/managedsave.js';
import { planSnapshot } from '../chain/incr.js';
import type { Plan } from '../chain/plan.js';
import { describeStep } from '../chain/plan.js';
import { UserError } from '../errors.js';
import type { OpsContext } from './context.js';
import { executePlan } from './execute.js';
import { domainOperation } from './frame.js';
import type { ChainChange } from './outcome.js';
import { checkOutcome } from './outcome.js';
import { topReferencesOnce } from './references.js';
import { refuseRunningBlockJobs, refuseSharedActiveLayers, refuseSharedBases } from './refusals.js';
import type { Definitions } from './state.js';
import { domainFolder, readDomainStateWithDefinitions, takenNames } from './state.js';
import { captureVmFiles } from './vmfiles.js';

export interface BackupRequest {
  /** What the user asked for; `enable` is an incr that starts a chain. */
  readonly level: Level | 'enable';
  readonly quiesce: boolean;
  readonly exclude: readonly string[];
  readonly memoryDir?: string;
  readonly maxIncr?: number;
  /** Folder for the overlays of block-device disks (`overlay-dir`). */
  readonly overlayDir?: string;
  /** Run even while the domain is in maintenance. */
  readonly force?: boolean;
}

export interface BackupResult extends ChainChange {
  /** The level that ran (an incr may become a diff under max-incr). */
  readonly level: string;
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
    taken: takenNames(state, request.overlayDir),
    ...(request.memoryDir === undefined ? {} : { memoryDir: path.resolve(request.memoryDir) }),
    ...(request.overlayDir === undefined ? {} : { overlayDir: path.resolve(request.overlayDir) }),
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

/** `backup incr|enable|diff|full|disable` on one domain, under its lock. */
export async function backupDomain(
  ctx: OpsContext,
  domain: string,
  request: BackupRequest,
): Promise<BackupResult> {
  return withEarlyStart(ctx, domain, request, () =>
    domainOperation(
      ctx,
      domain,
      { verb: `backup ${request.level}`, refuseInMaintenance: request.force !== true },
      () => backupLocked(ctx, domain, request),
    ),
  );
}

/**
 * Runs `operation`, which takes the domain's lock and then runs backupLocked, with what needs no
 * lock already started: the read of every domain's disks (awaited by refuseSharedActiveLayers)
 * and, when libvirt's pid file says the domain runs (a hint: a shut-off domain's is discarded), the
 * snapshot of an incr or a diff (Virsh.prepareSnapshot: libvirt's own connection opens, or a virsh
 * run starts and looks the domain up), while the lock is taken and the checks run. Nothing changes
 * before backupLocked gives the snapshot its document, under the lock, after the checks.
 */
export async function withEarlyStart<T>(
  ctx: OpsContext,
  domain: string,
  request: Pick<BackupRequest, 'level' | 'quiesce' | 'memoryDir'>,
  operation: () => Promise<T>,
): Promise<T> {
  void topReferencesOnce(ctx.host).catch(() => undefined);
  if (wantsSnapshot(ctx, request.level) && ctx.host.virsh.seemsRunning(domain))
    ctx.host.virsh.prepareSnapshot(domain, snapshotFlags(request));
  try {
    return await operation();
  } finally {
    ctx.host.virsh.discardSnapshot(domain);
  }
}

/**
 * An incr's snapshot, and a diff's, taken before its pull, are its first change. A full's comes
 * after its commit, which can take hours: a virsh run prepared that long before would lose its
 * connection to a libvirtd restarted meanwhile, which one started after the commit survives.
 */
function wantsSnapshot(ctx: OpsContext, level: BackupRequest['level']): boolean {
  return !ctx.dryRun && (level === 'incr' || level === 'enable' || level === 'diff');
}

function snapshotFlags(request: Pick<BackupRequest, 'quiesce' | 'memoryDir'>) {
  return { quiesce: request.quiesce, memory: request.memoryDir !== undefined };
}

/** The same, inside a caller's domain operation (`run` keeps its lock while restic reads). */
export async function backupLocked(
  ctx: OpsContext,
  domain: string,
  request: BackupRequest,
): Promise<BackupResult> {
  const started = Date.now();
  let name = domain;
  try {
    const { state, definitions } = await readDomainStateWithDefinitions(ctx.host, domain, undefined, {
      migratable: !ctx.dryRun,
    });
    // Named by its UUID, the domain's snapshot is planned under its name.
    name = state.name;
    refuseManagedSave(state, `backup ${request.level}`);
    const { included } = selectDisks(state, request.exclude);
    const requested = request.level === 'enable' ? 'incr' : request.level;
    const { level, note } = chooseLevel(included, requested, request.maxIncr);
    if (wantsSnapshot(ctx, level) && isActive(state))
      ctx.host.virsh.prepareSnapshot(state.name, snapshotFlags(request));
    else ctx.host.virsh.discardSnapshot(domain);
    return await checkAndRun(ctx, { state, definitions }, { included, level, note }, request, started);
  } finally {
    ctx.host.virsh.discardSnapshot(domain);
    ctx.host.virsh.discardSnapshot(name);
  }
}

/** The level chosen for the disks a backup includes, and why when it is not the one asked for. */
interface Choice {
  readonly included: readonly Disk[];
  readonly level: Level;
  readonly note: string | undefined;
}

/** backupLocked once the domain is read: the refusals, then the plan, its run and its check. */
async function checkAndRun(
  ctx: OpsContext,
  { state, definitions }: { state: DomainState; definitions: Definitions },
  { included, level, note }: Choice,
  request: BackupRequest,
  started: number,
): Promise<BackupResult> {
  const domain = state.name;
  if (level !== 'incr' && isActive(state)) await refuseRunningBlockJobs(ctx, state, included);
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
  const verified = await checkOutcome(ctx, thePlan, state);
  journal.finish();
  const folder = domainFolder(verified.after);
  const copied =
    level === 'disable' || folder === undefined
      ? []
      : await captureVmFiles(ctx, state, definitions.live, folder);
  return result(verified.after.disks, [...notes, ...verified.notes, ...copied]);
}
