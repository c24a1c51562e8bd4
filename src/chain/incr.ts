import path from 'node:path';
import type { LayerKind } from './layername.js';
import { formatStamp, layerFileName, stemOf } from './layername.js';
import type { Disk, DomainState } from './model.js';
import { baseLayer, isActive } from './model.js';
import type { NewLayer, Plan, Step } from './plan.js';
import { configDumps } from './plan.js';
import { overlayFolder } from './blockdisk.js';
import { InternalError } from '../errors.js';

export interface SnapshotOptions {
  readonly kind: LayerKind;
  readonly now: Date;
  readonly quiesce: boolean;
  /** Paths that already exist: a new layer never takes one of these names. */
  readonly taken: ReadonlySet<string>;
  /** Folder for an external memory state file (`-s DIR`). */
  readonly memoryDir?: string;
  /** Folder for the overlays of a disk whose top is a block device (`overlay-dir`). */
  readonly overlayDir?: string;
}

export interface SnapshotPlan extends Plan {
  readonly layers: readonly NewLayer[];
}

/** Layer names carry seconds; when a name is taken (two runs in one second) the next second is used. */
function newLayers(
  domain: string,
  disks: readonly Disk[],
  options: SnapshotOptions,
): { layers: NewLayer[]; time: Date } {
  for (let offset = 0; ; offset++) {
    const time = new Date(options.now.getTime() + offset * 1000);
    const layers = disks.map((disk) => {
      const [top] = disk.chain;
      const base = baseLayer(disk);
      if (!top || !base) throw new InternalError(`disk ${disk.target} has no chain`);
      return {
        target: disk.target,
        file: path.join(
          overlayFolder(domain, disk, top, options.overlayDir),
          layerFileName(stemOf(base.path), options.kind, time),
        ),
        backing: top.path,
        backingFormat: top.format,
      };
    });
    if (layers.every((l) => !options.taken.has(l.file))) return { layers, time };
  }
}

/** The memory state's name carries the domain and the stamp of the layers it belongs to. */
export function memoryFileName(domain: string, kind: LayerKind, time: Date): string {
  return `${domain}.${kind}-${formatStamp(time)}.memory`;
}

/**
 * incr (and enable): dump the config, then freeze every disk's active layer under a new one,
 * atomically across disks. Running domains: one libvirt snapshot; shut-off: qemu-img + redefine.
 */
export function planSnapshot(
  state: DomainState,
  disks: readonly Disk[],
  verb: string,
  options: SnapshotOptions,
): SnapshotPlan {
  const { layers, time } = newLayers(state.name, disks, options);
  const [first] = layers;
  if (!first) throw new InternalError('no disks to snapshot');
  const notes: string[] = [];
  const steps: Step[] = [{ kind: 'dump-config', dumps: configDumps(path.dirname(first.file), state.name) }];
  if (isActive(state)) {
    const touched = new Set(layers.map((l) => l.target));
    steps.push({
      kind: 'snapshot',
      layers,
      untouched: state.disks.filter((d) => !touched.has(d.target)).map((d) => d.target),
      quiesce: options.quiesce,
      ...(options.memoryDir === undefined
        ? {}
        : { memoryFile: path.join(options.memoryDir, memoryFileName(state.name, options.kind, time)) }),
    });
  } else {
    if (options.quiesce)
      notes.push(`domain '${state.name}' is shut off: nothing to quiesce, --quiesce ignored`);
    if (options.memoryDir !== undefined)
      notes.push(`domain '${state.name}' is shut off: no memory to save, --memory-state ignored`);
    steps.push({ kind: 'create-overlays', layers });
    steps.push({ kind: 'redefine', sources: layers.map((l) => ({ target: l.target, file: l.file })) });
  }
  return {
    domain: state.name,
    verb,
    steps,
    layers,
    tops: new Map(layers.map((l) => [l.target, l.file])),
    notes,
  };
}
