import path from 'node:path';
import { UserError } from '../errors.js';
import type { XmlDisk } from '../host/domainxml.js';
import type { LayerHeader, QemuImg } from '../host/qemuimg.js';
import type { Restic } from '../host/restic.js';
import { ProcessError } from '../host/runner.js';
import { domainTag } from '../naming.js';
import type { BackupTree } from './backuptree.js';
import { chooseSnapshot, locate, resticTree } from './backuptree.js';

/** Which restic snapshot to read: the one named, or the domain's latest made by `host`. */
export interface SnapshotChoice {
  readonly restic: Restic;
  readonly snapshot?: string;
  readonly host: string;
}

/** The tree of the chosen snapshot, read with `restic ls` and never trusted. */
export async function openSnapshot(domain: string, choice: SnapshotChoice): Promise<BackupTree> {
  const { restic } = choice;
  const snapshot = chooseSnapshot(
    await restic.snapshots(
      choice.snapshot === undefined
        ? { tags: [domainTag(domain, 'Name the snapshot by its id: --from restic:ID.')] }
        : {},
    ),
    {
      domain,
      host: choice.host,
      ...(choice.snapshot === undefined ? {} : { id: choice.snapshot }),
      repository: restic.repositoryText,
    },
  );
  return resticTree(restic, snapshot, await restic.ls(snapshot.id));
}

/** One layer of a restored disk: where it is in the backup, where it was staged, what its header says. */
export interface RestoredLayer {
  readonly treePath: string;
  readonly format: string;
  readonly header: LayerHeader;
  /** The backing layer's tree path. */
  readonly backing?: string;
  /** The raw backing this layer records when the backup holds no file of that name: a block device whose copy is a snapshot of its own. */
  readonly deviceBase?: string;
}

export interface RestoredDisk {
  readonly target: string;
  readonly layers: readonly RestoredLayer[];
  /** With no layers: the block device that is the disk's top frozen layer (its copy is a snapshot of its own). */
  readonly device?: string;
}

/** How the next layer down is opened: never probed, only qcow2 or raw. */
function backingOf(
  tree: BackupTree,
  layer: { treePath: string; header: LayerHeader },
  deviceBases: boolean,
): { treePath?: string; format: string; problem?: string; device?: string } {
  const recorded = layer.header.backingFilename ?? '';
  const format = layer.header.backingFormat ?? 'qcow2';
  const folder = path.posix.dirname(layer.treePath);
  const treePath = path.posix.isAbsolute(recorded)
    ? locate(tree, recorded, folder)
    : path.posix.join(folder, recorded);
  if (treePath === undefined || !tree.types.has(treePath)) {
    if (deviceBases && format === 'raw' && path.posix.isAbsolute(recorded))
      return { format, device: recorded };
    return { format, problem: `backing file ${recorded} of ${layer.treePath} is not in ${tree.what}` };
  }
  if (format !== 'qcow2' && format !== 'raw')
    return {
      format,
      problem: `${layer.treePath} records its backing ${recorded} as ${format}; only qcow2 and raw are restored`,
    };
  return { treePath, format };
}

/** A chain being fetched: the layers read so far, and the next one down to read. */
interface OpenChain {
  readonly target: string;
  /** The block device that is the disk's top frozen layer, when the backup holds no file for it. */
  readonly device: string | undefined;
  readonly layers: RestoredLayer[];
  next: { readonly treePath: string; readonly format: string } | undefined;
}

/**
 * Fetches every layer of each disk's chain as the dump names it: its source is the top frozen
 * layer; each layer's header (opened with an explicit format) names the next one down, which must
 * be a regular file in the backup. One fetch per level of all disks' chains. `refused` starts the
 * message listing the problems ("restore of domain 'web1' from … refused; nothing was placed").
 * With `deviceBases`, a block-device disk source or an absolute raw backing the backup does not
 * hold ends its chain, recorded as the disk's `device` or the layer's `deviceBase` (a device copy,
 * fetched by the caller).
 */
export async function fetchChains(
  qemuImg: QemuImg,
  backup: { readonly tree: BackupTree; readonly dump: string },
  disks: readonly XmlDisk[],
  fetched: { readonly staging: string; readonly staged: Map<string, string> },
  refused: string,
  deviceBases = false,
): Promise<RestoredDisk[]> {
  const { tree } = backup;
  const { staging, staged } = fetched;
  const problems: string[] = [];
  const chains = disks.map((disk) => chainTop(tree, backup.dump, disk, deviceBases, problems));
  for (;;) {
    const open = chains.filter((c) => c.next !== undefined);
    if (open.length === 0) break;
    for (const chain of open) refuseNonFile(tree, chain, problems);
    const wanted = [...new Set(open.flatMap((c) => (c.next === undefined ? [] : [c.next.treePath])))];
    for (const [treePath, file] of await tree.fetch(
      wanted.filter((p) => !staged.has(p)),
      staging,
    ))
      staged.set(treePath, file);
    for (const chain of open) {
      const next = chain.next;
      if (next === undefined) continue;
      chain.next = undefined;
      const file = staged.get(next.treePath) ?? '';
      const problem = await readLayer(qemuImg, tree, file, chain, next, deviceBases);
      if (problem !== undefined) problems.push(`disk ${chain.target}: ${problem}`);
    }
  }
  if (problems.length > 0) throw new UserError(`${refused}:\n` + problems.map((p) => `  ${p}`).join('\n'));
  return chains.map((c) => ({
    target: c.target,
    layers: c.layers,
    ...(c.device === undefined ? {} : { device: c.device }),
  }));
}

function chainTop(
  tree: BackupTree,
  dump: string,
  disk: XmlDisk,
  deviceBases: boolean,
  problems: string[],
): OpenChain {
  const top = locate(tree, disk.source ?? '', path.posix.dirname(dump));
  const device = top === undefined && deviceBases && disk.sourceType === 'block' ? disk.source : undefined;
  if (top === undefined && device === undefined)
    problems.push(`disk ${disk.target}: its layer ${disk.source ?? ''} is not in ${tree.what}`);
  return {
    target: disk.target,
    device,
    layers: [],
    // The dump names the top frozen layer: a raw disk's own file before its first overlay.
    next:
      top === undefined ? undefined : { treePath: top, format: disk.driverType === 'raw' ? 'raw' : 'qcow2' },
  };
}

function refuseNonFile(tree: BackupTree, chain: OpenChain, problems: string[]): void {
  const type = tree.types.get(chain.next?.treePath ?? '');
  if (type === 'file') return;
  problems.push(
    `disk ${chain.target}: layer ${chain.next?.treePath ?? ''} is a ${type ?? 'missing'} entry in ` +
      `${tree.what}, not a regular file`,
  );
  chain.next = undefined;
}

/**
 * Reads the header of one fetched layer and adds it to its chain, setting the next layer down when
 * it has one; returns the problem that ends the chain instead.
 */
async function readLayer(
  qemuImg: QemuImg,
  tree: BackupTree,
  file: string,
  chain: OpenChain,
  next: { readonly treePath: string; readonly format: string },
  deviceBases: boolean,
): Promise<string | undefined> {
  let header: LayerHeader;
  try {
    header = await qemuImg.header(file, next.format);
  } catch (error) {
    if (!(error instanceof ProcessError)) throw error;
    return `${next.treePath} is not a readable ${next.format} image: ${error.stderr.trim()}`;
  }
  if (header.dataFile !== undefined)
    return `${next.treePath} keeps its data in an external data file ${header.dataFile}`;
  if (header.backingFilename === undefined || next.format === 'raw') {
    chain.layers.push({ treePath: next.treePath, format: next.format, header });
    return undefined;
  }
  const backing = backingOf(tree, { treePath: next.treePath, header }, deviceBases);
  if (backing.device !== undefined) {
    chain.layers.push({ treePath: next.treePath, format: next.format, header, deviceBase: backing.device });
    return undefined;
  }
  if (backing.problem !== undefined || backing.treePath === undefined) return backing.problem ?? '';
  if (backing.treePath === next.treePath || chain.layers.some((l) => l.treePath === backing.treePath))
    return `the chain loops back to ${backing.treePath}`;
  chain.layers.push({ treePath: next.treePath, format: next.format, header, backing: backing.treePath });
  chain.next = { treePath: backing.treePath, format: backing.format };
  return undefined;
}
