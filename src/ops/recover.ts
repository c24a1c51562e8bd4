import { existsSync } from 'node:fs';
import type { Step } from '../chain/plan.js';
import { DomainBusyError } from '../errors.js';
import { parseDomainXml, setDiskSources } from '../host/domainxml.js';
import { blockJobPercent } from '../host/virsh.js';
import type { JournalRecord } from '../journal/journal.js';
import { clearJournal } from '../journal/journal.js';
import type { OpsContext } from './context.js';
import { purgeLayers } from './purge.js';

/** Files an interrupted step may have made or left to delete: each is removed only if unreferenced. */
function filesToReconsider(step: Step): string[] {
  switch (step.kind) {
    case 'snapshot':
    case 'create-overlays':
      return step.layers.map((l) => l.file);
    case 'purge':
      return [...step.files];
    default:
      return [];
  }
}

function blockJobSteps(steps: readonly Step[]): Map<string, Step['kind']> {
  return new Map(
    steps.flatMap((s) =>
      s.kind === 'block-pull' || s.kind === 'block-commit' ? [[s.merge.target, s.kind]] : [],
    ),
  );
}

export interface RecoverOptions {
  /**
   * `repair`: also abort a block job that is still copying (the start of a verb refuses instead),
   * and make the persistent definition match the live one even when no journal is left.
   */
  readonly repair?: boolean;
}

/** One thing to do to finish an interrupted run: `what` is imperative ("abort …"); --dry-run only says it. */
type Act = (what: string, action: () => Promise<unknown>) => Promise<void>;

async function reconcileBlockJobs(
  ctx: OpsContext,
  domain: string,
  record: JournalRecord,
  repair: boolean,
  act: Act,
): Promise<void> {
  for (const [target, kind] of blockJobSteps(record.steps)) {
    const job = await ctx.host.virsh.blockJobInfo(domain, target).catch(() => undefined);
    if (job === undefined) continue;
    const progress = `${job.type}, ${blockJobPercent(job)}%`;
    // `blockcommit --active --pivot` ends with a pivot; a ready active commit only lacks it.
    if (kind === 'block-commit' && job.ready && /active/i.test(job.type))
      await act(
        `pivot disk ${target} onto the base its interrupted block commit finished (${progress})`,
        () => ctx.host.virsh.blockJobPivot(domain, target),
      );
    else if (job.ready || repair)
      await act(`abort the block job left on disk ${target} (${progress}); the disk keeps its chain`, () =>
        ctx.host.virsh.blockJobAbort(domain, target),
      );
    else
      throw new DomainBusyError(
        `domain '${domain}': disk ${target} still runs a block job left by an interrupted '${record.verb}' (${progress}). ` +
          `Wait for it to finish (virsh blockjob '${domain}' ${target} --info), or stop it with: unifi-backup repair '${domain}'`,
      );
  }
}

/** Invariant 6: a crash between a live change and the redefinition leaves the definitions apart. */
async function reconcileDefinitions(ctx: OpsContext, domain: string, act: Act): Promise<void> {
  const live = parseDomainXml(await ctx.host.virsh.dumpXml(domain), `definition of domain '${domain}'`);
  const inactiveXml = await ctx.host.virsh.dumpXml(domain, 'inactive');
  const inactive = parseDomainXml(inactiveXml, `persistent definition of '${domain}'`);
  const persistentSources = new Map(inactive.disks.map((d) => [d.target, d.source]));
  const stale = live.disks.flatMap((d) =>
    d.device === 'disk' &&
    d.source !== undefined &&
    persistentSources.has(d.target) &&
    persistentSources.get(d.target) !== d.source
      ? [[d.target, d.source] as [string, string]]
      : [],
  );
  if (stale.length === 0) return;
  const liveFormats = new Map(live.disks.map((d) => [d.target, d.driverType ?? 'qcow2']));
  const liveDevices = new Set(live.disks.filter((d) => d.sourceType === 'block').map((d) => d.target));
  await act(
    `redefine the persistent definition to match the running disks: ${stale.map(([t, f]) => `${t}=${f}`).join(', ')}`,
    () =>
      ctx.host.virsh.define(setDiskSources(inactiveXml, new Map(stale), liveFormats, liveDevices), domain),
  );
}

/**
 * Finishes what an interrupted run left behind on this domain (DESIGN §4, invariant 2), in an order
 * that never loses data: a block job is pivoted (when it finished and the plan wanted the pivot) or
 * aborted, a domain left paused is resumed, the persistent definition is made to match the running
 * disks, and layers that were made but never joined a chain, or were due for deletion, are removed
 * once no chain references them. Run at the start of every verb and by `repair`.
 */
export async function recoverInterrupted(
  ctx: OpsContext,
  domain: string,
  /** The domain's journal as the caller read it (undefined: none was left). */
  record: JournalRecord | undefined,
  options: RecoverOptions = {},
): Promise<string[]> {
  const repair = options.repair === true;
  if (!record && !repair) return [];
  const actions: string[] = [];
  const act: Act = async (what, action) => {
    if (ctx.dryRun) actions.push(`would ${what}`);
    else {
      await action();
      actions.push(`${what}: done`);
    }
  };
  if (record)
    actions.push(
      `an earlier '${record.verb}' (pid ${record.pid}, ${record.startedAt}) was interrupted after step ${record.done} of ${record.steps.length}`,
    );
  const info = await ctx.host.virsh.info(domain);
  const running = info.runState !== 'shut off';
  if (record && running) await reconcileBlockJobs(ctx, domain, record, repair, act);
  if (record && info.runState === 'paused')
    await act('resume the domain, which the interrupted run left paused', () =>
      ctx.host.virsh.resume(domain),
    );
  if (running && info.persistent) await reconcileDefinitions(ctx, domain, act);
  const candidates = record
    ? [...new Set(record.steps.flatMap(filesToReconsider))].filter((f) => existsSync(f))
    : [];
  if (ctx.dryRun) actions.push(...candidates.map((f) => `would remove ${f} unless a chain references it`));
  else if (candidates.length > 0) {
    const { removed, kept } = await purgeLayers(ctx, candidates);
    actions.push(...removed.map((f) => `removed ${f}: no chain references it`));
    if (repair) actions.push(...kept.map((k) => `kept ${k.file}: ${k.reason}`));
  }
  if (record && !ctx.dryRun) clearJournal(ctx.stateDir, domain);
  return actions;
}
