import type { SnapshotOptions } from './incr.js';
import { planSnapshot } from './incr.js';
import type { Disk, DomainState, Layer } from './model.js';
import { baseLayer, isActive } from './model.js';
import type { Merge, Plan, Step } from './plan.js';
import { diskSource } from './plan.js';
import { InternalError } from '../errors.js';

export type Level = 'incr' | 'diff' | 'full' | 'disable';

function mergeOf(disk: Disk, top: Layer, base: Layer): Merge {
  return { target: disk.target, top: top.path, base: base.path, baseFormat: base.format };
}

function requireBase(disk: Disk): Layer {
  const base = baseLayer(disk);
  if (!base) throw new InternalError(`disk ${disk.target} has no chain`);
  return base;
}

/** Everything above the base: what a diff or full merges away and then removes. */
function layersAboveBase(disk: Disk): string[] {
  return disk.chain.slice(0, -1).map((l) => l.path);
}

function withChain(state: DomainState, disks: readonly Disk[]): DomainState {
  const byTarget = new Map(disks.map((d) => [d.target, d]));
  return { ...state, disks: state.disks.map((d) => byTarget.get(d.target) ?? d) };
}

/**
 * diff: a new diff layer on every disk, every layer above the base pulled into it, the pulled layers
 * removed; then as incr. Result per disk: base ← diff ← incr (active).
 */
export function planDiff(state: DomainState, disks: readonly Disk[], options: SnapshotOptions): Plan {
  const diff = planSnapshot(state, disks, 'diff', {
    ...options,
    kind: 'diff',
    quiesce: false,
    memoryDir: undefined,
  });
  const steps: Step[] = [];
  const running = isActive(state);
  steps.push(...diff.steps.filter((s) => s.kind !== 'dump-config' && s.kind !== 'redefine'));
  const after: Disk[] = [];
  for (const disk of disks) {
    const base = requireBase(disk);
    const layer = diff.layers.find((l) => l.target === disk.target);
    if (!layer) throw new InternalError(`no diff layer for ${disk.target}`);
    if (disk.chain.length > 1)
      steps.push({
        kind: running ? 'block-pull' : 'rebase',
        merge: { target: disk.target, top: layer.file, base: base.path, baseFormat: base.format },
      });
    const top = disk.chain[0] ?? base;
    after.push({ ...disk, chain: [{ ...top, path: layer.file, kind: 'diff', time: options.now }, base] });
  }
  if (!running)
    steps.push({ kind: 'redefine', sources: diff.layers.map((l) => ({ target: l.target, file: l.file })) });
  const purge = disks.flatMap(layersAboveBase);
  if (purge.length > 0) steps.push({ kind: 'purge', files: purge });
  const taken = new Set([...options.taken, ...diff.layers.map((l) => l.file)]);
  const incr = planSnapshot(withChain(state, after), after, 'diff', { ...options, kind: 'incr', taken });
  return { ...incr, verb: 'diff', steps: [...steps, ...incr.steps], notes: [...diff.notes, ...incr.notes] };
}

/**
 * full and disable: the whole chain committed into the base, the other layers removed; full then
 * continues as incr (base ← incr), disable leaves the domain on its base alone.
 */
export function planCommit(
  state: DomainState,
  disks: readonly Disk[],
  level: 'full' | 'disable',
  options: SnapshotOptions,
): Plan {
  const running = isActive(state);
  const steps: Step[] = [];
  const after: Disk[] = [];
  for (const disk of disks) {
    const base = requireBase(disk);
    const top = disk.chain[0];
    if (top && disk.chain.length > 1)
      steps.push({ kind: running ? 'block-commit' : 'commit', merge: mergeOf(disk, top, base) });
    after.push({ ...disk, chain: [base] });
  }
  const purge = disks.flatMap(layersAboveBase);
  if (!running && purge.length > 0)
    steps.push({
      kind: 'redefine',
      sources: after.map((d) => {
        const base = requireBase(d);
        return diskSource(d.target, base.path, base.format, base.device);
      }),
    });
  if (purge.length > 0) steps.push({ kind: 'purge', files: purge });
  const tops = new Map(after.map((d) => [d.target, requireBase(d).path]));
  if (level === 'disable') return { domain: state.name, verb: level, steps, tops, notes: [] };
  const incr = planSnapshot(withChain(state, after), after, level, { ...options, kind: 'incr' });
  return { ...incr, verb: level, steps: [...steps, ...incr.steps] };
}

/** The `max-incr` policy: an incr that would make a chain hold more than N incr layers becomes a diff. */
export function chooseLevel(
  disks: readonly Disk[],
  requested: Level,
  maxIncr: number | undefined,
): { level: Level; note?: string } {
  if (requested !== 'incr' || maxIncr === undefined) return { level: requested };
  const longest = Math.max(0, ...disks.map((d) => d.chain.filter((l) => l.kind === 'incr').length));
  if (longest + 1 <= maxIncr) return { level: 'incr' };
  return {
    level: 'diff',
    note: `the chain already holds ${longest} incr layers (max-incr ${maxIncr}): doing a diff instead of an incr`,
  };
}
