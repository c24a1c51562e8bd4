import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { unsupportedReason } from '../chain/eligibility.js';
import { isIgnoredDevice } from '../chain/model.js';
import { UsageError, UserError } from '../errors.js';
import type { ImageRegion } from '../host/blockdevices.js';
import { attachLoop, probeRegion, readPartitions } from '../host/blockdevices.js';
import type { ExportLayer } from '../host/blockexport.js';
import { createScratchOverlay, startExport } from '../host/blockexport.js';
import { parseDomainXml } from '../host/domainxml.js';
import { mountDevice, mountPoints, mountTmpfs, remountReadOnly } from '../host/mounts.js';
import { lockDomain } from '../lock/lock.js';
import type { SnapshotChoice } from './backupchain.js';
import { fetchChains, openSnapshot } from './backupchain.js';
import { findDump, folderTree } from './backuptree.js';
import type { OpsContext } from './context.js';
import { faultAfterStep } from './fault.js';
import type { MountRecord } from './mount-record.js';
import { newMountId, readMountRecords, workFolder, writeMountRecord } from './mount-record.js';
import { clearStaleMounts, takeDown, tmpfsSource } from './mount-teardown.js';
import type { PlannedFilesystem } from './mountlayout.js';
import { describeFilesystems, planFilesystems } from './mountlayout.js';
import { readDomainState } from './state.js';

/** Where the disk comes from: a restic snapshot, a folder holding a backup, or the domain's own frozen layers. */
export type MountSource =
  | { readonly kind: 'restic'; readonly choice: SnapshotChoice }
  | { readonly kind: 'dir'; readonly dir: string }
  | { readonly kind: 'live' };

export interface MountRequest {
  readonly source: MountSource;
  /** The disk's target (vda); default the first disk. */
  readonly disk?: string;
  /** Where the filesystems go; undefined lists them (`--list`) and mounts nothing. */
  readonly mountpoint?: string;
}

export interface MountedFilesystem {
  readonly name: string;
  readonly partition?: number;
  readonly size: number;
  readonly type?: string;
  readonly label?: string;
  /** Where it is mounted; undefined when it was not (see `skipped`) or with `--list`. */
  readonly folder?: string;
  readonly skipped?: string;
}

export interface MountResult {
  readonly domain: string;
  readonly disk: string;
  /** The backup read: `restic snapshot 1a2b3c4d of host 'h'`, `folder /srv/x`, `the frozen layers of …`. */
  readonly from: string;
  /** Every disk the backup holds, for `--list`. */
  readonly disks: readonly string[];
  readonly mountpoint?: string;
  readonly filesystems: readonly MountedFilesystem[];
}

/** A disk's chain ready to export: top first, with what the export may share. */
interface DiskChain {
  readonly from: string;
  readonly disks: readonly string[];
  readonly target: string;
  readonly layers: readonly ExportLayer[];
  /** A live domain's frozen layers: its QEMU holds their locks. */
  readonly shared: boolean;
}

function refuseUnfitHost(): void {
  if (process.geteuid?.() !== 0)
    throw new UserError(
      'mount needs root: it attaches loop devices and mounts filesystems. Nothing was mounted. Run it as root.',
    );
  if (!existsSync('/dev/fuse'))
    throw new UserError(
      'mount needs FUSE and /dev/fuse is missing. Nothing was mounted. Load the module (modprobe fuse); ' +
        'in a container, pass /dev/fuse through.',
    );
}

async function refuseBusyMountpoint(ctx: OpsContext, mountpoint: string): Promise<void> {
  const info = await stat(mountpoint).catch(() => undefined);
  if (info?.isDirectory() !== true)
    throw new UsageError(
      `${mountpoint} is not a folder. Nothing was mounted. Create an empty folder to mount at.`,
    );
  const recorded = readMountRecords(ctx.stateDir).find((r) => r.mountpoint === mountpoint);
  if (recorded !== undefined || (await mountPoints()).includes(mountpoint))
    throw new UserError(
      `${mountpoint} is in use: ${recorded === undefined ? 'something is mounted there' : `disk ${recorded.disk} of '${recorded.domain}' is mounted there`}. ` +
        `Nothing was mounted. Take it down first (${recorded === undefined ? 'umount' : 'unifi-backup unmount'} '${mountpoint}') or choose another folder.`,
    );
  if ((await readdir(mountpoint)).length > 0)
    throw new UserError(
      `${mountpoint} is not empty; mount would hide its files. Nothing was mounted. Choose an empty folder.`,
    );
}

function pickDisk<T extends { readonly target: string }>(
  disks: readonly T[],
  wanted: string | undefined,
  what: string,
): T {
  const disk = wanted === undefined ? disks[0] : disks.find((d) => d.target === wanted);
  if (disk === undefined)
    throw new UserError(
      `${what} has no ${wanted === undefined ? 'file disk (qcow2 or raw)' : `disk ${wanted}`}; its disks: ` +
        `${disks.map((d) => d.target).join(', ') || 'none'}. Nothing was mounted. Choose one with --disk.`,
    );
  return disk;
}

const exportFormat = (format: string, what: string): 'qcow2' | 'raw' => {
  if (format === 'qcow2' || format === 'raw') return format;
  throw new UserError(`${what} is ${format}; only qcow2 and raw layers are mounted.`);
};

/** The live domain's frozen layers of one disk: the state at its last snapshot. */
async function liveChain(ctx: OpsContext, domain: string, wanted: string | undefined): Promise<DiskChain> {
  const state = await readDomainState(ctx.host, domain, { persistent: false });
  const disks = state.disks.filter((d) => d.chain.length > 0);
  const from = `the frozen layers of domain '${domain}'`;
  const disk = pickDisk(disks, wanted, `domain '${domain}'`);
  const frozen = disk.chain.slice(1);
  if (frozen.length === 0)
    throw new UserError(
      `disk ${disk.target} of '${domain}' has no frozen layer yet: its only layer is the active one, which the ` +
        `domain writes. Nothing was mounted. Make one with 'unifi-backup backup incr ${domain}', or mount a backup with --from.`,
    );
  return {
    from,
    disks: disks.map((d) => d.target),
    target: disk.target,
    layers: frozen.map((l) => ({ file: l.path, format: exportFormat(l.format, l.path) })),
    shared: true,
  };
}

/** One disk's chain of a backup, fetched (restic) or found in place (folder), every layer checked as restore checks it. */
async function backupChain(
  ctx: OpsContext,
  domain: string,
  source: Exclude<MountSource, { kind: 'live' }>,
  wanted: string | undefined,
  staging: string,
): Promise<DiskChain> {
  const tree =
    source.kind === 'restic' ? await openSnapshot(domain, source.choice) : await folderTree(source.dir, true);
  const dump = findDump(tree, domain);
  const staged = await tree.fetch([dump], staging);
  const xml = await readFile(staged.get(dump) ?? '', 'utf8');
  const what = `the config dump ${dump} of ${tree.what}`;
  const disks = parseDomainXml(xml, what).disks.filter(
    (d) => !isIgnoredDevice(d) && unsupportedReason(d) === undefined,
  );
  const disk = pickDisk(disks, wanted, what);
  ctx.log(`${domain}: reading disk ${disk.target} from ${tree.what}`);
  const [chain] = await fetchChains(
    ctx.host.qemuImg,
    { tree, dump },
    [disk],
    { staging, staged },
    `mount of disk ${disk.target} of '${domain}' from ${tree.what} refused; nothing was mounted`,
  );
  return {
    from: tree.what,
    disks: disks.map((d) => d.target),
    target: disk.target,
    layers: (chain?.layers ?? []).map((l) => ({
      file: staged.get(l.treePath) ?? '',
      format: exportFormat(l.format, l.treePath),
    })),
    shared: false,
  };
}

async function openDiskChain(
  ctx: OpsContext,
  domain: string,
  request: MountRequest,
  staging: string,
): Promise<DiskChain> {
  const { source } = request;
  if (source.kind !== 'live') return backupChain(ctx, domain, source, request.disk, staging);
  // The chain is read and opened under the domain's lock, so no backup changes it midway.
  const lock = await lockDomain(ctx.lockDir, domain, 'mount');
  try {
    return await liveChain(ctx, domain, request.disk);
  } finally {
    lock.release();
  }
}

/** Exports the chain's top as a raw image file in the work folder; returns that file and its size. */
async function exportChain(
  ctx: OpsContext,
  chain: DiskChain,
  work: string,
  domain: string,
): Promise<{ file: string; size: number }> {
  const file = path.join(work, 'disk');
  await writeFile(file, '', { mode: 0o600, flag: 'wx' });
  const [top] = chain.layers;
  const overlay = path.join(work, 'scratch.qcow2');
  const size = (await ctx.host.qemuImg.header(top?.file ?? '', top?.format)).virtualSize;
  await createScratchOverlay(ctx.host.runner, overlay, size);
  await startExport(ctx.host.runner, {
    layers: chain.layers,
    shared: chain.shared,
    overlay,
    exportFile: file,
    pidFile: path.join(work, 'daemon.pid'),
    what: `disk ${chain.target} of '${domain}' (${chain.from})`,
  });
  return { file, size: (await stat(file)).size };
}

/** The partitions (or the bare filesystem) of the exported disk and what each holds. */
async function findFilesystems(
  ctx: OpsContext,
  disk: { file: string; size: number },
  what: string,
): Promise<PlannedFilesystem[]> {
  const regions: ImageRegion[] = (await readPartitions(ctx.host.runner, disk.file, disk.size, what)) ?? [
    { offset: 0, size: disk.size },
  ];
  const found = [];
  for (const region of regions)
    found.push({ region, found: await probeRegion(ctx.host.runner, disk.file, region) });
  return planFilesystems(found);
}

/** A private read-only tmpfs at the mount point, one folder per filesystem, each mounted read-only over its own loop device. */
async function mountFilesystems(
  ctx: OpsContext,
  planned: readonly PlannedFilesystem[],
  exportFile: string,
  mountpoint: string,
): Promise<void> {
  await mountTmpfs(ctx.host.runner, mountpoint, tmpfsSource, 'mode=0700,size=1m,nodev,nosuid,noexec');
  for (const fs of planned) {
    if (fs.options === undefined || fs.type === undefined) continue;
    const folder = path.join(mountpoint, fs.name);
    await mkdir(folder, { mode: 0o700 });
    const device = await attachLoop(ctx.host.runner, exportFile, fs.region);
    await mountDevice(ctx.host.runner, { device, folder, type: fs.type, options: fs.options });
  }
  await remountReadOnly(ctx.host.runner, mountpoint);
}

function resultOf(
  domain: string,
  chain: DiskChain,
  planned: readonly PlannedFilesystem[],
  mountpoint: string | undefined,
): MountResult {
  return {
    domain,
    disk: chain.target,
    from: chain.from,
    disks: chain.disks,
    ...(mountpoint === undefined ? {} : { mountpoint }),
    filesystems: planned.map((p) => ({
      name: p.name,
      ...(p.region.number === undefined ? {} : { partition: p.region.number }),
      size: p.region.size,
      ...(p.type === undefined ? {} : { type: p.type }),
      ...(p.found.label === undefined ? {} : { label: p.found.label }),
      ...(mountpoint === undefined || p.skipped !== undefined
        ? {}
        : { folder: path.join(mountpoint, p.name) }),
      ...(p.skipped === undefined ? {} : { skipped: p.skipped }),
    })),
  };
}

/**
 * `mount DOMAIN [--from …] MOUNTPOINT` (or `--list`): reads one disk's chain only, exports its top
 * read-only through qemu-storage-daemon, and mounts each filesystem on it read-only under the
 * mount point. Everything lives in a private work folder named in a mount record written first.
 */
export async function mountDisk(
  ctx: OpsContext,
  domain: string,
  request: MountRequest,
): Promise<MountResult> {
  refuseUnfitHost();
  const mountpoint = request.mountpoint === undefined ? undefined : path.resolve(request.mountpoint);
  for (const line of await clearStaleMounts(ctx)) ctx.log(line);
  if (mountpoint !== undefined) await refuseBusyMountpoint(ctx, mountpoint);
  const record: MountRecord = {
    id: newMountId(),
    domain,
    disk: request.disk ?? '',
    ...(mountpoint === undefined ? {} : { mountpoint }),
    pid: process.pid,
    complete: false,
  };
  writeMountRecord(ctx.stateDir, record);
  const work = workFolder(ctx.stateDir, record.id);
  let mounted = false;
  try {
    await mkdir(work, { mode: 0o700 });
    const staging = path.join(work, 'layers');
    await mkdir(staging, { mode: 0o700 });
    const chain = await openDiskChain(ctx, domain, request, staging);
    writeMountRecord(ctx.stateDir, { ...record, disk: chain.target });
    const what = `disk ${chain.target} of '${domain}' (${chain.from})`;
    const disk = await exportChain(ctx, chain, work, domain);
    faultAfterStep(1);
    const planned = await findFilesystems(ctx, disk, what);
    if (mountpoint === undefined) return resultOf(domain, chain, planned, undefined);
    if (planned.every((p) => p.options === undefined))
      throw new UserError(
        `${what} holds no filesystem mount can read; nothing was mounted. Found:\n` +
          describeFilesystems(planned)
            .map((l) => `  ${l}`)
            .join('\n'),
      );
    await mountFilesystems(ctx, planned, disk.file, mountpoint);
    faultAfterStep(2);
    writeMountRecord(ctx.stateDir, { ...record, disk: chain.target, complete: true });
    mounted = true;
    return resultOf(domain, chain, planned, mountpoint);
  } finally {
    // The reason mount stopped is the error to show; a failure to take down is told beside it.
    if (!mounted)
      await takeDown(ctx, record).catch((error: unknown) => {
        ctx.log(
          `${domain}: could not take down what mount set up (${error instanceof Error ? error.message : String(error)}); ` +
            `run 'unifi-backup repair ${domain}'`,
        );
      });
  }
}

/** `unmount MOUNTPOINT`: takes down what `mount` set up there. */
export async function unmountAt(
  ctx: OpsContext,
  mountpoint: string,
): Promise<{ mountpoint: string; domain: string; disk: string; actions: string[] }> {
  const resolved = path.resolve(mountpoint);
  const record = readMountRecords(ctx.stateDir).find((r) => r.mountpoint === resolved);
  if (record === undefined)
    throw new UserError(
      `nothing unifi-backup mounted is at ${resolved} (no mount record in ${ctx.stateDir}). ` +
        `Was it mounted with another --state-dir? Otherwise unmount it with umount.`,
    );
  return {
    mountpoint: resolved,
    domain: record.domain,
    disk: record.disk,
    actions: await takeDown(ctx, record),
  };
}
