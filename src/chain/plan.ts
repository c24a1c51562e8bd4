import path from 'node:path';
import type { LayerKind } from './layername.js';
import { layerFileName, stemOf } from './layername.js';
import type { Disk, DomainState } from './model.js';
import { baseLayer, isActive } from './model.js';

export type XmlFlavour = 'live' | 'inactive' | 'migratable';

export interface ConfigDump {
  readonly flavour: XmlFlavour;
  readonly file: string;
}

export interface NewLayer {
  readonly target: string;
  readonly file: string;
  /** The layer that becomes frozen under it (the current active layer). */
  readonly backing: string;
  readonly backingFormat: string;
}

/** One step of a plan. Steps are executed in order and recorded in the journal as they finish. */
export type Step =
  | { readonly kind: 'dump-config'; readonly dumps: readonly ConfigDump[] }
  | {
      readonly kind: 'snapshot';
      readonly layers: readonly NewLayer[];
      /** Targets of disks that must not be touched (excluded, cdroms…). */
      readonly untouched: readonly string[];
      readonly quiesce: boolean;
    }
  | { readonly kind: 'create-overlays'; readonly layers: readonly NewLayer[] }
  | { readonly kind: 'redefine'; readonly sources: readonly { target: string; file: string }[] };

export interface Plan {
  readonly domain: string;
  readonly verb: string;
  readonly steps: readonly Step[];
  /** Per disk: the file that is the active layer once the plan has run. */
  readonly tops: ReadonlyMap<string, string>;
  readonly notes: readonly string[];
}

export interface SnapshotOptions {
  readonly kind: LayerKind;
  readonly now: Date;
  readonly quiesce: boolean;
  /** Paths that already exist: a new layer never takes one of these names. */
  readonly taken: ReadonlySet<string>;
}

/** Layer names carry seconds; when a name is taken (two runs in one second) the next second is used. */
function newLayers(disks: readonly Disk[], options: SnapshotOptions): NewLayer[] {
  for (let offset = 0; ; offset++) {
    const time = new Date(options.now.getTime() + offset * 1000);
    const layers = disks.map((disk) => {
      const [top] = disk.chain;
      const base = baseLayer(disk);
      if (!top || !base) throw new Error(`disk ${disk.target} has no chain`);
      return {
        target: disk.target,
        file: path.join(path.dirname(top.path), layerFileName(stemOf(base.path), options.kind, time)),
        backing: top.path,
        backingFormat: top.format,
      };
    });
    if (layers.every((l) => !options.taken.has(l.file))) return layers;
  }
}

export function configDumps(folder: string, domain: string): ConfigDump[] {
  return [
    { flavour: 'live', file: path.join(folder, `${domain}.xml`) },
    { flavour: 'inactive', file: path.join(folder, `${domain}-inactive.xml`) },
    { flavour: 'migratable', file: path.join(folder, `${domain}-migratable.xml`) },
  ];
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
): Plan {
  const layers = newLayers(disks, options);
  const [first] = layers;
  if (!first) throw new Error('no disks to snapshot');
  const notes: string[] = [];
  const steps: Step[] = [{ kind: 'dump-config', dumps: configDumps(path.dirname(first.file), state.name) }];
  if (isActive(state)) {
    const touched = new Set(layers.map((l) => l.target));
    steps.push({
      kind: 'snapshot',
      layers,
      untouched: state.disks.filter((d) => !touched.has(d.target)).map((d) => d.target),
      quiesce: options.quiesce,
    });
  } else {
    if (options.quiesce)
      notes.push(`domain '${state.name}' is shut off: nothing to quiesce, --quiesce ignored`);
    steps.push({ kind: 'create-overlays', layers });
    steps.push({ kind: 'redefine', sources: layers.map((l) => ({ target: l.target, file: l.file })) });
  }
  return { domain: state.name, verb, steps, tops: new Map(layers.map((l) => [l.target, l.file])), notes };
}

/** One line per step, for `--dry-run` and the journal. */
export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'dump-config':
      return `write config dumps ${step.dumps.map((d) => d.file).join(', ')}`;
    case 'snapshot':
      return (
        `live snapshot${step.quiesce ? ' (quiesced)' : ''}, atomic: ` +
        step.layers.map((l) => `${l.target}: ${l.backing} ← ${l.file}`).join('; ') +
        (step.untouched.length > 0 ? `; untouched: ${step.untouched.join(', ')}` : '')
      );
    case 'create-overlays':
      return `create overlays ${step.layers.map((l) => `${l.target}: ${l.backing} ← ${l.file}`).join('; ')}`;
    case 'redefine':
      return `redefine with ${step.sources.map((s) => `${s.target}=${s.file}`).join(', ')}`;
  }
}
