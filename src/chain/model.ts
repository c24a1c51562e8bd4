import type { LayerKind } from './layername.js';

/** One qcow2 (or other) file in a disk's backing chain. */
export interface Layer {
  readonly path: string;
  readonly format: string;
  readonly virtualSize: number;
  /** Bytes the file occupies on the host (allocated, not apparent). */
  readonly actualSize: number;
  /** `base` for the bottom of the chain, `foreign` for names this tool did not make. */
  readonly kind: LayerKind | 'base' | 'foreign';
  readonly time?: Date;
  /** A block device (an LVM logical volume, a partition), not a file: only ever a chain's base. */
  readonly device?: true;
}

export type DiskDevice = 'disk' | 'cdrom' | 'floppy' | 'lun';

/** A `<disk>` as the domain definition describes it. */
export interface DiskDefinition {
  readonly target: string;
  readonly device: DiskDevice;
  /** The `<disk type=…>`: file, block, network, volume, … */
  readonly sourceType: string;
  readonly driverType: string | undefined;
  readonly source: string | undefined;
  readonly readonly: boolean;
}

/** A disk with its chain read from the image headers. */
export interface Disk extends DiskDefinition {
  /** Top (active) first, base last. Empty when the disk does not take part. */
  readonly chain: readonly Layer[];
}

export type RunState = 'running' | 'paused' | 'shut off' | 'other';

/** Which of libvirt's domain definitions: the running one, the persistent one, or the one for migration. */
export type XmlFlavour = 'live' | 'inactive' | 'migratable';

export interface DomainState {
  readonly name: string;
  readonly uuid: string;
  readonly persistent: boolean;
  readonly runState: RunState;
  /** Shut off with its RAM saved by libvirt (`virsh managedsave`): starting it resumes that RAM. */
  readonly managedSave: boolean;
  /** Disks as the domain runs them now (live definition when running, else the persistent one). */
  readonly disks: readonly Disk[];
  /** Sources of the persistent definition, by target (empty for transient domains). */
  readonly persistentSources: ReadonlyMap<string, string | undefined>;
}

export function isActive(state: DomainState): boolean {
  return state.runState !== 'shut off';
}

/** All layers below the active one: frozen, safe to read, what a backup copies. */
export function frozenLayers(disk: Disk): readonly Layer[] {
  return disk.chain.slice(1);
}

export function baseLayer(disk: Disk): Layer | undefined {
  return disk.chain.at(-1);
}

/** Devices that never take part and are ignored without a word (DESIGN §2). */
export function isIgnoredDevice(disk: DiskDefinition): boolean {
  return disk.device !== 'disk';
}
