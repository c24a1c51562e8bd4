import path from 'node:path';
import type { XmlFlavour } from './model.js';

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

/** Merges the layers between `top` and `base` of one disk (exclusive of base). */
export interface Merge {
  readonly target: string;
  readonly top: string;
  readonly base: string;
  readonly baseFormat: string;
}

/**
 * A disk pointed at a file by a redefinition; `format` is given when the file is not qcow2 (a raw
 * base), `device` when it is a block device.
 */
export interface DiskSource {
  readonly target: string;
  readonly file: string;
  readonly format?: string;
  readonly device?: true;
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
      /** External memory state saved atomically with the disks. */
      readonly memoryFile?: string;
    }
  | { readonly kind: 'create-overlays'; readonly layers: readonly NewLayer[] }
  /** Running: `blockpull --base` into the active layer. */
  | { readonly kind: 'block-pull'; readonly merge: Merge }
  /** Shut off: `qemu-img rebase` of top onto base, copying what the dropped layers held. */
  | { readonly kind: 'rebase'; readonly merge: Merge }
  /** Running: `blockcommit --active --pivot` of the whole chain into base. */
  | { readonly kind: 'block-commit'; readonly merge: Merge }
  /** Shut off: `qemu-img commit -b base top`. */
  | { readonly kind: 'commit'; readonly merge: Merge }
  | { readonly kind: 'redefine'; readonly sources: readonly DiskSource[] }
  /** Delete layers that left every chain — each re-checked against every domain first (invariant 1). */
  | { readonly kind: 'purge'; readonly files: readonly string[] }
  /** Running: `virsh destroy`, so the disks can be reverted underneath a stopped VM. */
  | { readonly kind: 'destroy' }
  /** Shut off: `virsh start`. */
  | { readonly kind: 'start' }
  /** Shut off: `virsh restore` of a memory state, its disks pointed at the given files. */
  | {
      readonly kind: 'restore';
      readonly memoryFile: string;
      readonly sources: readonly DiskSource[];
    };

export interface Plan {
  readonly domain: string;
  readonly verb: string;
  readonly steps: readonly Step[];
  /** Per disk: the file that is the active layer once the plan has run. */
  readonly tops: ReadonlyMap<string, string>;
  readonly notes: readonly string[];
}

/** The formats of the sources that are not qcow2, by target, as setDiskSources takes them. */
export function sourceFormats(sources: readonly DiskSource[]): Map<string, string> {
  return new Map(sources.flatMap((s) => (s.format === undefined ? [] : [[s.target, s.format] as const])));
}

/** The targets whose source is a block device, as setDiskSources takes them. */
export function sourceDevices(sources: readonly DiskSource[]): Set<string> {
  return new Set(sources.filter((s) => s.device === true).map((s) => s.target));
}

/** A disk source for `file`, whose format is `format`. */
export function diskSource(target: string, file: string, format: string, device?: boolean): DiskSource {
  return {
    target,
    file,
    ...(format === 'qcow2' ? {} : { format }),
    ...(device === true ? { device: true as const } : {}),
  };
}

export function configDumps(folder: string, domain: string): ConfigDump[] {
  return [
    { flavour: 'live', file: path.join(folder, `${domain}.xml`) },
    { flavour: 'inactive', file: path.join(folder, `${domain}-inactive.xml`) },
    { flavour: 'migratable', file: path.join(folder, `${domain}-migratable.xml`) },
  ];
}

function mergeText(m: Merge): string {
  return `${m.target}: ${m.top} → ${m.base}`;
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
        (step.untouched.length > 0 ? `; untouched: ${step.untouched.join(', ')}` : '') +
        (step.memoryFile === undefined ? '' : `; memory state → ${step.memoryFile}`)
      );
    case 'create-overlays':
      return `create overlays ${step.layers.map((l) => `${l.target}: ${l.backing} ← ${l.file}`).join('; ')}`;
    case 'block-pull':
      return `block pull ${step.merge.target}: layers above ${step.merge.base} into ${step.merge.top}`;
    case 'rebase':
      return `rebase ${step.merge.target}: ${step.merge.top} onto ${step.merge.base}`;
    case 'block-commit':
      return `block commit and pivot ${mergeText(step.merge)}`;
    case 'commit':
      return `commit ${mergeText(step.merge)}`;
    case 'redefine':
      return `redefine with ${step.sources.map((s) => `${s.target}=${s.file}`).join(', ')}`;
    case 'purge':
      return `remove merged layers ${step.files.join(', ')}`;
    case 'destroy':
      return 'stop the domain (virsh destroy)';
    case 'start':
      return 'start the domain';
    case 'restore':
      return (
        `restore the memory state ${step.memoryFile} with ` +
        step.sources.map((s) => `${s.target}=${s.file}`).join(', ')
      );
  }
}
