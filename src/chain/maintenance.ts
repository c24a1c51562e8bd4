import { UserError } from '../errors.js';
import type { SnapshotOptions, SnapshotPlan } from './incr.js';
import { planSnapshot } from './incr.js';
import type { Disk, DomainState } from './model.js';
import { isActive } from './model.js';
import type { Plan, Step } from './plan.js';
import { diskSource } from './plan.js';

/** One disk in maintenance: the layer `enter` made and the layer it froze (the undo point). */
export interface MaintenanceDisk {
  readonly target: string;
  readonly layer: string;
  readonly parent: string;
  readonly parentFormat: string;
}

/**
 * Where a disk stands against its maintenance record: still on the maintenance layer, back on its
 * parent (an interrupted enter or drop), or changed since (a forced backup put layers above it…).
 */
export type MaintenancePosition = 'in-maintenance' | 'reverted' | 'changed';

export function maintenancePosition(disk: Disk | undefined, m: MaintenanceDisk): MaintenancePosition {
  const [top, below] = disk?.chain ?? [];
  if (top?.path === m.layer && below?.path === m.parent) return 'in-maintenance';
  if (top?.path === m.parent) return 'reverted';
  return 'changed';
}

export type EnterOptions = Omit<SnapshotOptions, 'kind'>;

/**
 * enter: a maintenance layer on every disk, atomically (with the memory state when asked). No config
 * dumps: those describe the backup chain for restic, and a maintenance layer is not part of it.
 */
export function planEnter(
  state: DomainState,
  disks: readonly Disk[],
  options: EnterOptions,
): { plan: SnapshotPlan; disks: MaintenanceDisk[] } {
  const memory = isActive(state) && options.memoryDir !== undefined;
  const snapshot = planSnapshot(state, disks, 'maintenance-enter', {
    ...options,
    kind: 'maintenance',
    // A memory state pauses the VM for the whole snapshot: there is nothing left to quiesce.
    quiesce: options.quiesce && !memory,
  });
  const notes = [...snapshot.notes];
  if (options.quiesce && memory)
    notes.push('the memory state is saved with the VM paused: --quiesce is not needed and was not used');
  return {
    plan: { ...snapshot, steps: snapshot.steps.filter((s) => s.kind !== 'dump-config'), notes },
    disks: snapshot.layers.map((l) => ({
      target: l.target,
      layer: l.file,
      parent: l.backing,
      parentFormat: l.backingFormat,
    })),
  };
}

function positions(
  state: DomainState,
  maintained: readonly MaintenanceDisk[],
  verb: string,
): { inMaintenance: MaintenanceDisk[]; changed: string[] } {
  const inMaintenance: MaintenanceDisk[] = [];
  const changed: string[] = [];
  for (const m of maintained) {
    const disk = state.disks.find((d) => d.target === m.target);
    const position = maintenancePosition(disk, m);
    if (position === 'in-maintenance') inMaintenance.push(m);
    if (position === 'changed')
      changed.push(
        `disk ${m.target} runs from ${disk?.chain[0]?.path ?? 'nothing'}, not from its maintenance layer ${m.layer} on ${m.parent}`,
      );
  }
  if (changed.length > 0)
    throw new UserError(
      `domain '${state.name}': its chain changed since 'maintenance enter', so '${verb}' cannot tell what to ` +
        `${verb === 'maintenance save' ? 'merge' : 'throw away'}: ${changed.join('; ')}. Nothing was changed. ` +
        `Keep everything with 'unifi-backup maintenance save --consolidate ${state.name}' (commits the whole ` +
        `chain into the base), or check it with 'unifi-backup backup showchain ${state.name}'.`,
    );
  return { inMaintenance, changed };
}

const parentSources = (maintained: readonly MaintenanceDisk[]) =>
  maintained.map((m) => diskSource(m.target, m.parent, m.parentFormat));

const tops = (maintained: readonly MaintenanceDisk[]) => new Map(maintained.map((m) => [m.target, m.parent]));

/**
 * save: each maintenance layer merged into its parent, which becomes the active layer again — the
 * chain is as it was before enter. Running: `blockcommit --active --pivot`; shut off: qemu-img commit.
 */
export function planSave(state: DomainState, maintained: readonly MaintenanceDisk[]): Plan {
  const { inMaintenance } = positions(state, maintained, 'maintenance save');
  const running = isActive(state);
  const steps: Step[] = inMaintenance.map((m) => ({
    kind: running ? 'block-commit' : 'commit',
    merge: { target: m.target, top: m.layer, base: m.parent, baseFormat: m.parentFormat },
  }));
  if (!running && state.persistent) steps.push({ kind: 'redefine', sources: parentSources(maintained) });
  steps.push({ kind: 'purge', files: maintained.map((m) => m.layer) });
  return { domain: state.name, verb: 'maintenance-save', steps, tops: tops(maintained), notes: [] };
}

export interface DropOptions {
  /** The memory state `enter` saved, when it still exists. */
  readonly memoryFile?: string;
  /** A running domain without memory state: stop it, revert, start it again. */
  readonly force: boolean;
  /**
   * An earlier drop stopped the domain and was interrupted before it brought it back: a shut-off
   * domain is then resumed from the memory state, or started, as that drop would have.
   */
  readonly interrupted?: 'restore' | 'start';
}

/**
 * drop: every disk back on its parent (exactly its state at enter), the maintenance layers deleted.
 * A running domain resumes from the memory state of enter, or with --force is stopped and started.
 */
export function planDrop(
  state: DomainState,
  maintained: readonly MaintenanceDisk[],
  options: DropOptions,
): Plan {
  const { inMaintenance } = positions(state, maintained, 'maintenance drop');
  const sources = parentSources(maintained);
  const redefine: Step[] = state.persistent ? [{ kind: 'redefine', sources }] : [];
  const steps: Step[] = [];
  const notes: string[] = [];
  if (isActive(state) && inMaintenance.length > 0) {
    if (options.memoryFile !== undefined)
      steps.push({ kind: 'destroy' }, ...redefine, {
        kind: 'restore',
        memoryFile: options.memoryFile,
        sources,
      });
    else if (!options.force)
      throw new UserError(
        `domain '${state.name}' is running and 'maintenance enter' saved no memory state, so its running ` +
          `state at enter cannot be brought back. Nothing was changed. Shut it down first, or run ` +
          `'unifi-backup maintenance drop --force ${state.name}' to stop it, revert its disks and start it again.`,
      );
    else if (!state.persistent)
      throw new UserError(
        `domain '${state.name}' is transient: once stopped, libvirt forgets it, so --force cannot stop, ` +
          `revert and start it. Nothing was changed. Define it (virsh define) and run again.`,
      );
    else {
      steps.push({ kind: 'destroy' }, ...redefine, { kind: 'start' });
      notes.push(`domain '${state.name}' was stopped and started again on the disks of enter (--force)`);
    }
  } else {
    if (state.persistent && maintained.some((m) => state.persistentSources.get(m.target) !== m.parent))
      steps.push(...redefine);
    if (!isActive(state) && options.interrupted === 'restore' && options.memoryFile !== undefined)
      steps.push({ kind: 'restore', memoryFile: options.memoryFile, sources });
    else if (!isActive(state) && options.interrupted !== undefined) steps.push({ kind: 'start' });
    if (!isActive(state) && options.interrupted !== undefined)
      notes.push(`finishing an interrupted drop: domain '${state.name}' is brought back running`);
  }
  steps.push({ kind: 'purge', files: maintained.map((m) => m.layer) });
  return { domain: state.name, verb: 'maintenance-drop', steps, tops: tops(maintained), notes };
}
