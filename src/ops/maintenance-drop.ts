import { existsSync } from 'node:fs';
import { planDrop } from '../chain/maintenance.js';
import { refuseManagedSave } from '../chain/managedsave.js';
import type { Step } from '../chain/plan.js';
import type { OpsContext } from './context.js';
import type { MaintenanceResult } from './maintenance-window.js';
import { endWindow, requireRecord, resultOf, runAndCheck } from './maintenance-window.js';
import { readDomainState } from './state.js';

export interface DropRequest {
  /** Running without memory state: stop the VM, revert, start it. */
  readonly force: boolean;
}

/**
 * `repair` after an interrupted drop: finishes it, as running `maintenance drop` again would — a
 * drop killed after stopping the domain must not leave it stopped once repaired (invariant 7).
 * Runs under the caller's lock, after its recovery; `undone` are the steps the journal had left.
 */
export async function finishInterruptedDrop(
  ctx: OpsContext,
  domain: string,
  undone: readonly Step[],
): Promise<MaintenanceResult> {
  return dropWindow(ctx, domain, { force: false }, undone, Date.now());
}

export async function dropWindow(
  ctx: OpsContext,
  domain: string,
  request: DropRequest,
  undone: readonly Step[],
  started: number,
): Promise<MaintenanceResult> {
  const record = requireRecord(ctx, domain, 'drop');
  const state = await readDomainState(ctx.host, domain);
  refuseManagedSave(state, 'maintenance drop');
  const memoryFile =
    record.memoryFile !== undefined && existsSync(record.memoryFile) ? record.memoryFile : undefined;
  const interrupted = undone.find((s) => s.kind === 'restore' || s.kind === 'start')?.kind;
  const plan = planDrop(state, record.disks, {
    force: request.force,
    ...(memoryFile === undefined ? {} : { memoryFile }),
    ...(interrupted === undefined ? {} : { interrupted }),
  });
  const result = resultOf(ctx, state, plan, { action: 'drop', since: record.since, started });
  if (ctx.dryRun) return result(state.disks, []);
  const done = await runAndCheck(ctx, plan);
  const memory = await endWindow(ctx, domain, record, plan);
  done.finish();
  return result(done.after.disks, [...done.notes, ...memory]);
}
