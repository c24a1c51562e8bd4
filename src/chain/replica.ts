import { createHash } from 'node:crypto';
import path from 'node:path';
import { InternalError } from '../errors.js';

/** How DIR keeps a replica: one standalone image, a mirrored chain, or one image merged forward. */
export const syncModes = ['full', 'diff', 'inplace'] as const;
export type SyncMode = (typeof syncModes)[number];

/** A frozen source layer as it was when copied: a changed size or mtime means changed content. */
export interface LayerId {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

/** A frozen layer of a source disk, read from the host just before planning. */
export interface SourceLayer extends LayerId {
  readonly format: string;
}

export interface SourceDisk {
  readonly target: string;
  /** Frozen layers, base first (the reverse of Disk.chain); never the active layer. */
  readonly frozen: readonly SourceLayer[];
}

/** One file in DIR and the source layers whose data it holds. */
export interface ReplicaFile {
  /** File name inside DIR. */
  readonly file: string;
  readonly format: string;
  readonly holds: readonly LayerId[];
  /** sha256 of the source bytes, for files copied byte for byte (diff mode, inplace overlays). */
  readonly sha256?: string;
  /** Size and mtime of the file in DIR when the sync ended: a change means the replica was booted. */
  readonly stamp?: { readonly size: number; readonly mtimeMs: number };
}

export interface ReplicaDisk {
  readonly target: string;
  /** The source disk's base path: what identifies the disk across syncs. */
  readonly origin: string;
  /** '' or `<hash>-`: put before every file name of this disk to keep it apart from a namesake. */
  readonly prefix: string;
  /** The replica disk's chain, base first; the last file is what the replica boots from. */
  readonly files: readonly ReplicaFile[];
}

/** What DIR holds for one source domain; written as `<domain>.replica.json` in DIR. */
export interface ReplicaState {
  readonly version: 1;
  readonly domain: string;
  readonly mode: SyncMode;
  readonly replica: string;
  readonly uuid: string;
  readonly macs: readonly string[];
  readonly updated: string;
  readonly disks: readonly ReplicaDisk[];
  /** Files no longer part of the replica, deleted once the replica's definition stopped using them. */
  readonly retired: readonly string[];
}

/** Makes a file in DIR: `convert` flattens a chain into a standalone image; `copy` copies one layer. */
export type ReplicaStep =
  | { readonly kind: 'convert'; readonly target: string; readonly from: string; readonly file: string }
  | {
      readonly kind: 'copy';
      readonly target: string;
      readonly from: SourceLayer;
      readonly file: string;
      /** The DIR file it must be backed by (`rebase -u`), undefined for a base. */
      readonly backing: { readonly file: string; readonly format: string } | undefined;
    }
  | {
      readonly kind: 'commit';
      readonly target: string;
      /** Top overlay; every overlay from it down to `base` is merged into `base`. */
      readonly top: string;
      readonly base: string;
    };

/** A step that makes a new file in DIR. */
export type MakeStep = Exclude<ReplicaStep, { kind: 'commit' }>;
export type CommitStep = Extract<ReplicaStep, { kind: 'commit' }>;

export interface ReplicaPlan {
  /** Steps that make new files (in temporary names, renamed when all are done). */
  readonly copies: readonly MakeStep[];
  /** The replica once the copies are renamed into place: written to the state file then. */
  readonly disks: readonly ReplicaDisk[];
  /** inplace: overlays merged into the image after the state recorded them. */
  readonly commits: readonly CommitStep[];
  /** The replica after the commits (equal to `disks` when there are none). */
  readonly final: readonly ReplicaDisk[];
  /** Files of the previous replica the new one no longer uses. */
  readonly retired: readonly string[];
  readonly notes: readonly string[];
}

export function sameLayer(a: LayerId, b: LayerId): boolean {
  return a.path === b.path && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

function layerId(layer: LayerId): LayerId {
  return { path: layer.path, size: layer.size, mtimeMs: layer.mtimeMs };
}

/** A short, stable tag of a folder: what keeps `a/vda.qcow2` and `b/vda.qcow2` apart in DIR. */
export function folderTag(folder: string): string {
  return createHash('sha256').update(folder).digest('hex').slice(0, 8);
}

/**
 * The prefix of each disk's files in DIR, by origin. A disk keeps the prefix it was given; a new
 * disk gets none unless its base's file name is also the name of another disk's base (of this
 * domain, of another domain synced into DIR, or a file in DIR that is not ours).
 */
export function diskPrefixes(
  origins: readonly string[],
  recorded: ReadonlyMap<string, string>,
  claimed: ReadonlySet<string>,
): Map<string, string> {
  const prefixes = new Map<string, string>();
  for (const origin of origins) {
    const known = recorded.get(origin);
    if (known !== undefined) {
      prefixes.set(origin, known);
      continue;
    }
    const name = path.basename(origin);
    const namesake = origins.some((o) => o !== origin && path.basename(o) === name);
    prefixes.set(origin, namesake || claimed.has(name) ? `${folderTag(path.dirname(origin))}-` : '');
  }
  return prefixes;
}

/** `desired`, or `stem~N.ext` with the first N that is free. */
export function freeName(desired: string, taken: ReadonlySet<string>): string {
  if (!taken.has(desired)) return desired;
  const { name, ext } = path.parse(desired);
  for (let n = 2; ; n++) {
    const candidate = `${name}~${n}${ext}`;
    if (!taken.has(candidate)) return candidate;
  }
}

export interface ReplicaRequest {
  readonly mode: SyncMode;
  readonly disks: readonly SourceDisk[];
  readonly previous: ReplicaState | undefined;
  /** File names DIR holds now, ours or not: a new file never takes one of them. */
  readonly taken: ReadonlySet<string>;
  /** Base file names other domains' replicas in DIR use. */
  readonly claimed: ReadonlySet<string>;
  /** Files of the previous replica changed since it was synced (booted): they cannot be built on. */
  readonly changed: ReadonlySet<string>;
}

interface DiskPlan {
  readonly copies: MakeStep[];
  readonly disk: ReplicaDisk;
  readonly commit?: CommitStep;
  readonly final: ReplicaDisk;
  readonly notes: string[];
}

function planFull(
  source: SourceDisk,
  previous: ReplicaDisk | undefined,
  fresh: (n: string) => string,
  prefix: string,
  changed: ReadonlySet<string>,
) {
  const top = source.frozen.at(-1);
  const base = source.frozen[0];
  if (!top || !base) throw new InternalError('planFull: no frozen layer');
  const only = previous?.files.length === 1 ? previous.files[0] : undefined;
  const upToDate =
    only !== undefined &&
    !changed.has(only.file) &&
    only.holds.length === source.frozen.length &&
    only.holds.every((id, i) => sameLayer(id, source.frozen[i] ?? id));
  if (only && upToDate) return { copies: [], files: [only] };
  const file = fresh(prefix + path.basename(base.path));
  return {
    copies: [{ kind: 'convert' as const, target: source.target, from: top.path, file }],
    files: [{ file, format: 'qcow2', holds: source.frozen.map(layerId) }],
  };
}

function planDiff(
  source: SourceDisk,
  previous: ReplicaDisk | undefined,
  fresh: (n: string) => string,
  prefix: string,
  changed: ReadonlySet<string>,
) {
  const old = previous?.files ?? [];
  let kept = 0;
  while (
    kept < source.frozen.length &&
    kept < old.length &&
    old[kept]?.holds.length === 1 &&
    !changed.has(old[kept]?.file ?? '') &&
    sameLayer(old[kept]?.holds[0] ?? ({} as LayerId), source.frozen[kept] ?? ({} as LayerId))
  )
    kept++;
  return copyAbove(source, old.slice(0, kept), source.frozen.slice(kept), fresh, prefix);
}

/** Copies of `layers`, each backed by the file below it: the first by the last of `kept`, if any. */
function copyAbove(
  source: SourceDisk,
  kept: readonly ReplicaFile[],
  layers: readonly SourceLayer[],
  fresh: (n: string) => string,
  prefix: string,
): { copies: MakeStep[]; files: ReplicaFile[] } {
  const files = [...kept];
  const copies: MakeStep[] = [];
  for (const layer of layers) {
    const below = files.at(-1);
    const file = fresh(prefix + path.basename(layer.path));
    copies.push({
      kind: 'copy',
      target: source.target,
      from: layer,
      file,
      backing: below && { file: below.file, format: below.format },
    });
    files.push({ file, format: layer.format, holds: [layerId(layer)] });
  }
  return { copies, files };
}

/**
 * inplace: the image holds the base and the layers merged so far. Layers frozen since are copied as
 * overlays on it and then committed into it. That is only right while the base is unchanged (a
 * `backup full` or `disable` rewrites it) and the new layers all sit above the merged ones: this
 * tool's consolidations pull removed layers into a new layer above, so their data comes back.
 */
function planInplace(
  source: SourceDisk,
  previous: ReplicaDisk | undefined,
  fresh: (n: string) => string,
  prefix: string,
  changed: ReadonlySet<string>,
): { copies: MakeStep[]; files: ReplicaFile[]; notes: string[] } {
  const [image, ...pending] = previous?.files ?? [];
  const base = source.frozen[0];
  const held = [...(image?.holds ?? []), ...pending.flatMap((f) => f.holds)];
  const isHeld = (layer: LayerId) => held.some((id) => sameLayer(id, layer));
  const firstNew = source.frozen.findIndex((l) => !isHeld(l));
  const fresher = firstNew < 0 ? [] : source.frozen.slice(firstNew);
  const booted = [image, ...pending].some((f) => f !== undefined && changed.has(f.file));
  const usable =
    !booted &&
    image !== undefined &&
    base !== undefined &&
    image.holds[0] !== undefined &&
    sameLayer(image.holds[0], base) &&
    fresher.every((l) => !isHeld(l));
  if (!usable) {
    const full = planFull(source, undefined, fresh, prefix, changed);
    const notes =
      image === undefined
        ? []
        : booted
          ? [
              `disk ${source.target}: the replica's image changed since the last sync (was it booted?): rebuilt`,
            ]
          : [`disk ${source.target}: the source's base changed (a backup full or disable): image rebuilt`];
    return { ...full, notes };
  }
  return { ...copyAbove(source, [image, ...pending], fresher, fresh, prefix), notes: [] };
}

function planDisk(
  mode: SyncMode,
  source: SourceDisk,
  previous: ReplicaDisk | undefined,
  prefix: string,
  fresh: (n: string) => string,
  changed: ReadonlySet<string>,
): DiskPlan {
  const base = source.frozen[0];
  if (!base) throw new InternalError(`disk ${source.target} has no frozen layer`);
  const made =
    mode === 'full'
      ? { ...planFull(source, previous, fresh, prefix, changed), notes: [] }
      : mode === 'diff'
        ? { ...planDiff(source, previous, fresh, prefix, changed), notes: [] }
        : planInplace(source, previous, fresh, prefix, changed);
  const disk: ReplicaDisk = { target: source.target, origin: base.path, prefix, files: made.files };
  const [image, ...overlays] = made.files;
  const top = overlays.at(-1);
  if (mode !== 'inplace' || !image || !top)
    return { copies: made.copies, disk, final: disk, notes: made.notes };
  const merged: ReplicaFile = { ...image, holds: made.files.flatMap((f) => f.holds) };
  return {
    copies: made.copies,
    disk,
    commit: { kind: 'commit', target: source.target, top: top.file, base: image.file },
    final: { ...disk, files: [merged] },
    notes: made.notes,
  };
}

/** What DIR must hold after this sync, and the steps that get it there from what it holds now. */
export function planReplica(request: ReplicaRequest): ReplicaPlan {
  const previousDisks = new Map((request.previous?.disks ?? []).map((d) => [d.origin, d]));
  const origins = request.disks.map((d) => d.frozen[0]?.path ?? '');
  const prefixes = diskPrefixes(
    origins,
    new Map([...previousDisks].map(([origin, d]) => [origin, d.prefix])),
    request.claimed,
  );
  const taken = new Set(request.taken);
  const fresh = (desired: string) => {
    const name = freeName(desired, taken);
    taken.add(name);
    return name;
  };
  const plans = request.disks.map((source, i) =>
    planDisk(
      request.mode,
      source,
      previousDisks.get(origins[i] ?? ''),
      prefixes.get(origins[i] ?? '') ?? '',
      fresh,
      request.changed,
    ),
  );
  const keeps = new Set(plans.flatMap((p) => [...p.disk.files, ...p.final.files].map((f) => f.file)));
  const previousFiles = [...(request.previous?.disks ?? []).flatMap((d) => d.files.map((f) => f.file))];
  const retired = [...new Set([...(request.previous?.retired ?? []), ...previousFiles])].filter(
    (f) => !keeps.has(f),
  );
  return {
    copies: plans.flatMap((p) => p.copies),
    disks: plans.map((p) => p.disk),
    commits: plans.flatMap((p) => (p.commit ? [p.commit] : [])),
    final: plans.map((p) => p.final),
    retired,
    notes: plans.flatMap((p) => p.notes),
  };
}

/** Files the replica uses when its state is `disks`. */
export function replicaFiles(disks: readonly ReplicaDisk[]): string[] {
  return disks.flatMap((d) => d.files.map((f) => f.file));
}

/** The file each disk of the replica boots from, by target. */
export function replicaTops(disks: readonly ReplicaDisk[]): Map<string, string> {
  return new Map(disks.flatMap((d) => (d.files.length > 0 ? [[d.target, d.files.at(-1)?.file ?? '']] : [])));
}

/** The format of the file each disk of the replica boots from, by target (raw for a copied raw base). */
export function replicaFormats(disks: readonly ReplicaDisk[]): Map<string, string> {
  return new Map(
    disks.flatMap((d) => (d.files.length > 0 ? [[d.target, d.files.at(-1)?.format ?? 'qcow2']] : [])),
  );
}

export function describeReplicaStep(step: ReplicaStep): string {
  switch (step.kind) {
    case 'convert':
      return `${step.target}: convert the frozen chain of ${step.from} into standalone ${step.file}`;
    case 'copy':
      return `${step.target}: copy ${step.from.path} to ${step.file}${step.backing ? `, backed by ${step.backing.file}` : ''}`;
    case 'commit':
      return `${step.target}: commit ${step.top} into ${step.base}`;
  }
}
