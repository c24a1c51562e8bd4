import { constants } from 'node:fs';
import { mkdtemp, open } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { Host } from '../host/host.js';
import { fileId, isBlockDevice } from '../host/fileid.js';
import type { Restic, ResticSnapshot } from '../host/restic.js';
import { runChecked } from '../host/runner.js';
import type { RestoredDisk, RestoredLayer } from './backupchain.js';
import { resticTree } from './backuptree.js';
import { copyName, overTag } from './devicecopy.js';
import { deviceTag } from '../naming.js';
import { fileReferences, quoted, useOf } from './references.js';

/** Where the device copies come from and where they go. */
export interface DeviceCopyRequest {
  readonly restic: Restic;
  /** The host whose snapshots are restored: its device copies are taken. */
  readonly host: string;
  readonly domain: string;
  /** The restored snapshot of the domain (its short ID). */
  readonly snapshot: string;
  /** Disks whose copy goes onto a device the user named (`--device-to TARGET=DEVICE`), by target. */
  readonly deviceTo: ReadonlyMap<string, string>;
}

/** A copy to write onto a named device once the restored files are placed. */
export interface DeviceWrite {
  readonly target: string;
  /** The device is the disk's top layer: the definition names it as a block device. */
  readonly top: boolean;
  /** The key the chain's base has among the placed files. */
  readonly key: string;
  readonly snapshot: string;
  readonly treePath: string;
  readonly device: string;
}

/**
 * The copy of a disk's device that the restored snapshot needs. Under a restored overlay: the copy
 * tagged with that overlay's name. When the snapshot's top frozen layer is the device itself (the
 * first run, a full), the overlay above it was made after the snapshot and is in no backup: the
 * copy is the one that run made, the first after the snapshot and before the domain's next one.
 */
async function findCopy(
  request: DeviceCopyRequest,
  target: string,
  above: string | undefined,
): Promise<{ copy: ResticSnapshot | undefined; wanted: string }> {
  const { restic, host, domain } = request;
  const tags = [deviceTag, `${domain}/${target}`];
  if (above !== undefined)
    return {
      copy: (await restic.snapshots({ tags: [...tags, overTag(above)], host })).at(-1),
      wanted: `made under ${above}`,
    };
  const snapshots = await restic.snapshots({ tags: [domain], host });
  const index = snapshots.findIndex((s) => s.shortId === request.snapshot);
  const after = snapshots[index]?.time.getTime() ?? Number.POSITIVE_INFINITY;
  const before = snapshots[index + 1]?.time.getTime() ?? Number.POSITIVE_INFINITY;
  const copy = (await restic.snapshots({ tags, host })).find(
    (s) => s.time.getTime() > after && s.time.getTime() < before,
  );
  return { copy, wanted: `made by the run of snapshot ${request.snapshot}` };
}

/** Why `device` cannot take a copy of `size` bytes for disk `target`, or undefined. */
async function deviceProblem(
  host: Host,
  target: string,
  device: string,
  size: number,
): Promise<string | undefined> {
  const named = `--device-to ${target}=${device}`;
  if (!isBlockDevice(device)) return `${named}: not a block device`;
  const use = useOf(await fileReferences(host), await fileId(device), device);
  if (use.kind === 'used') return `${named}: the device is in use by ${quoted(use.by)}`;
  if (use.kind === 'unknown') return `${named}: cannot tell whether a domain uses the device: ${use.why}`;
  // An exclusive open fails while the kernel holds the device: mounted, or under LVM, RAID or swap.
  const handle = await open(device, constants.O_RDONLY | constants.O_EXCL).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'EBUSY') return undefined;
    throw error;
  });
  if (handle === undefined) return `${named}: the device is mounted or held by the kernel (LVM, RAID, swap)`;
  await handle.close();
  const capacity = (await host.qemuImg.header(device, 'raw')).virtualSize;
  if (capacity < size) return `${named}: the device holds ${capacity} bytes, the copy ${size}`;
  return undefined;
}

/**
 * Puts each chain's block-device base back: the copy `run` made under the chain's lowest overlay
 * (the one tagged with that overlay's name). By default fetched like any layer into the staging
 * folder (a plain regular file of its own, checked), its zeroes made holes; for a disk named in
 * `deviceTo`, checked against that device and left to `writeDevices`. The lowest overlay then
 * points at it. Chains without a device base pass unchanged. A device without a matching copy, or
 * a named device that cannot take it, stops the restore before anything is placed or written.
 */
export async function fetchDeviceCopies(
  host: Host,
  request: DeviceCopyRequest,
  chains: readonly RestoredDisk[],
  fetched: { readonly staging: string; readonly staged: Map<string, string> },
  refused: string,
): Promise<{ chains: RestoredDisk[]; writes: DeviceWrite[] }> {
  const { deviceTo } = request;
  const problems: string[] = [];
  const result: RestoredDisk[] = [];
  const writes: DeviceWrite[] = [];
  const onDevice = (c: RestoredDisk) => c.device !== undefined || c.layers.at(-1)?.deviceBase !== undefined;
  for (const target of deviceTo.keys())
    if (!chains.some((c) => c.target === target && onDevice(c)))
      problems.push(`--device-to ${target}: the backup holds no disk ${target} on a block device`);
  const ids = await Promise.all([...deviceTo.values()].map(fileId));
  if (new Set(ids).size < ids.length) problems.push('--device-to names one device for two disks');
  for (const chain of chains) {
    const restored = await deviceChain(host, request, chain, fetched, writes);
    if (typeof restored === 'string') problems.push(restored);
    else result.push(restored);
  }
  if (problems.length > 0) throw new UserError(`${refused}:\n` + problems.map((p) => `  ${p}`).join('\n'));
  return { chains: result, writes };
}

/**
 * One chain with its device base replaced by the repository's copy (fetched, or planned onto the
 * named device in `writes`); the chain itself when it has no device base; the problem otherwise.
 */
async function deviceChain(
  host: Host,
  request: DeviceCopyRequest,
  chain: RestoredDisk,
  fetched: { readonly staging: string; readonly staged: Map<string, string> },
  writes: DeviceWrite[],
): Promise<RestoredDisk | string> {
  const { restic, domain, deviceTo } = request;
  const lowest = chain.layers.at(-1);
  const device = chain.device ?? lowest?.deviceBase;
  if (device === undefined) return chain;
  const found = await findCopy(request, chain.target, lowest?.treePath);
  if (found.copy === undefined) {
    return (
      `disk ${chain.target}: the repository holds no copy of the block device ${device} ${found.wanted} ` +
      `(restic snapshots --tag ${deviceTag},${domain}/${chain.target} --host '${request.host}' lists them). ` +
      'Restore another snapshot of the domain, one whose device copy is there.'
    );
  }
  const { copy } = found;
  const ls = await restic.ls(copy.id);
  const treePath = `/${copyName(domain, chain.target)}`;
  const entry = ls.find((e) => path.posix.normalize(e.path) === treePath);
  const tree = resticTree(restic, copy, ls);
  if (entry?.type !== 'file') return `disk ${chain.target}: ${tree.what} holds no regular file ${treePath}`;
  const key = `${copy.shortId}:${treePath}`;
  const named = deviceTo.get(chain.target);
  let header;
  if (named === undefined) {
    // A folder of its own: the copy's name may be a name the domain's snapshot holds too.
    const staged = await tree.fetch([treePath], await mkdtemp(path.join(fetched.staging, 'device-')));
    const file = staged.get(treePath) ?? '';
    await runChecked(host.runner, { argv: ['fallocate', '--dig-holes', file] });
    fetched.staged.set(key, file);
    header = await host.qemuImg.header(file, 'raw');
  } else {
    const problem = await deviceProblem(host, chain.target, named, entry.size);
    if (problem !== undefined) return problem;
    writes.push({
      key,
      target: chain.target,
      top: lowest === undefined,
      snapshot: copy.id,
      treePath,
      device: named,
    });
    header = await host.qemuImg.header(named, 'raw');
  }
  const base: RestoredLayer = { treePath: key, format: 'raw', header };
  return {
    target: chain.target,
    layers: lowest === undefined ? [base] : [...chain.layers.slice(0, -1), { ...lowest, backing: key }, base],
  };
}

/** Writes each copy onto its named device; returns the devices by the keys of the chains' bases. */
export async function writeDevices(
  restic: Restic,
  writes: readonly DeviceWrite[],
): Promise<Map<string, string>> {
  const written = new Map<string, string>();
  for (const write of writes) {
    await restic.dump(write.snapshot, write.treePath, write.device);
    written.set(write.key, write.device);
  }
  return written;
}
