import { link, lstat, mkdtemp, readFile, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { unsupportedReason } from '../chain/eligibility.js';
import { isIgnoredDevice } from '../chain/model.js';
import { UserError } from '../errors.js';
import { makeImageFolder } from '../host/imagefolder.js';
import type { XmlDisk } from '../host/domainxml.js';
import {
  parseDomainXml,
  relocateCharDeviceFiles,
  renameDomainXml,
  setDiskSources,
  setDomainName,
} from '../host/domainxml.js';
import { fileId } from '../host/fileid.js';
import type { KeepWord } from '../host/passthrough.js';
import { hostReaches } from '../host/passthrough.js';
import type { LayerHeader } from '../host/qemuimg.js';
import type { Restic } from '../host/restic.js';
import { NoSuchDomainError } from '../host/virsh.js';
import type { BackupTree } from './backuptree.js';
import { findDump, folderTree } from './backuptree.js';
import type { RestoredDisk } from './backupchain.js';
import { fetchChains, openSnapshot } from './backupchain.js';
import { checkLayers, resolveBacking } from './chaincheck.js';
import { fetchDeviceCopies, writeDevices } from './devicerestore.js';
import { setVmFiles } from '../host/vmfilexml.js';
import { placeVmFiles, planVmFiles } from './vmfiles-restore.js';
import type { OpsContext } from './context.js';

/** Where the backup comes from: a restic snapshot (latest of the domain when none is named) or a folder. */
export type RestoreSource =
  | {
      readonly kind: 'restic';
      readonly restic: Restic;
      readonly snapshot?: string;
      /** Whose snapshots: this host's (as restic records it) unless `--host` names another. */
      readonly host: string;
      readonly foreign: boolean;
    }
  | { readonly kind: 'dir'; readonly dir: string };

export interface RestoreRequest {
  readonly source: RestoreSource;
  /** Default: the config dump's folder (restic), or the folder restored from (dir). */
  readonly to?: string;
  /** A new name, UUID and MAC addresses, so the copy can run beside the original. */
  readonly as?: string;
  /** Host resources the definition may keep (`--keep-device`). */
  readonly keep: readonly KeepWord[];
  /** Block-device disks whose copy goes onto a device the user named, by target (default: into a raw file). */
  readonly deviceTo?: ReadonlyMap<string, string>;
  readonly define: boolean;
  readonly start: boolean;
}

export interface RestoreResult {
  readonly domain: string;
  readonly name: string;
  readonly snapshot?: string;
  readonly folder: string;
  readonly definition: string;
  readonly disks: readonly { readonly target: string; readonly chain: readonly string[] }[];
  /** The variable store, TPM state and direct-kernel files put back. */
  readonly vmFiles: readonly string[];
  readonly rebased: readonly string[];
  readonly defined: boolean;
  readonly started: boolean;
}

/** The backup opened: its tree, where its inactive config dump is, and where the restore goes. */
interface OpenedBackup {
  readonly tree: BackupTree;
  readonly dump: string;
  readonly folder: string;
  /** A folder restored where it is: nothing is copied or moved. */
  readonly inPlace: boolean;
}

const configDumps = (domain: string) => [
  `${domain}.xml`,
  `${domain}-inactive.xml`,
  `${domain}-migratable.xml`,
];

/** `restic:ID`, `restic` or a folder, as `--from` takes it. */
export function parseFrom(
  from: string,
): { kind: 'restic'; snapshot?: string } | { kind: 'dir'; dir: string } {
  if (from === 'restic') return { kind: 'restic' };
  if (from.startsWith('restic:')) {
    const snapshot = from.slice('restic:'.length);
    return snapshot === '' || snapshot === 'latest' ? { kind: 'restic' } : { kind: 'restic', snapshot };
  }
  return { kind: 'dir', dir: path.resolve(from) };
}

async function refuseDomainInUse(ctx: OpsContext, name: string): Promise<void> {
  try {
    const info = await ctx.host.virsh.info(name);
    throw new UserError(
      `domain '${name}' is already defined (${info.runState}). Nothing was restored. Restore beside it with ` +
        `--as NEWNAME, or remove it first (virsh undefine '${name}') if it is the one to replace.`,
    );
  } catch (error) {
    if (error instanceof NoSuchDomainError) return;
    throw error;
  }
}

async function refuseTaken(folder: string, files: readonly string[]): Promise<void> {
  const exists = await Promise.all(
    files.map((f) =>
      lstat(f).then(
        () => true,
        () => false,
      ),
    ),
  );
  const taken = files.filter((_, i) => exists[i]);
  if (taken.length > 0)
    throw new UserError(
      `${taken.length === 1 ? `${taken[0] ?? ''} exists` : `${taken.length} files exist in ${folder}`}; restore never ` +
        `overwrites. Nothing was restored. Give an empty or new folder with --to DIR, or move the old files away.`,
    );
}

async function openBackup(ctx: OpsContext, domain: string, request: RestoreRequest): Promise<OpenedBackup> {
  const to = request.to === undefined ? undefined : path.resolve(request.to);
  const { source } = request;
  if (source.kind === 'dir') {
    const inPlace = to === undefined || to === source.dir;
    const tree = await folderTree(source.dir, inPlace);
    return { tree, dump: findDump(tree, domain), folder: to ?? source.dir, inPlace };
  }
  const tree = await openSnapshot(domain, source);
  if (source.foreign && to === undefined)
    throw new UserError(
      `restic snapshot ${tree.snapshot ?? ''} was made by host '${source.host}': its folders are that ` +
        `host's. Nothing was restored. Say where its files go with --to DIR.`,
    );
  const dump = findDump(tree, domain);
  ctx.log(`${domain}: restoring from ${tree.what}`);
  return { tree, dump, folder: to ?? path.dirname(dump), inPlace: false };
}

/** The target folder and a private (0700) staging folder inside it, on its file system. */
async function openTarget(folder: string): Promise<{ staging: string; created: boolean }> {
  const created = await makeImageFolder(folder);
  return { staging: await mkdtemp(path.join(folder, '.unifi-backup-restore-')), created };
}

/** Fetches the config dumps beside the inactive one; returns them and the inactive dump's XML. */
async function fetchDumps(
  backup: OpenedBackup,
  domain: string,
  staging: string,
): Promise<{ staged: Map<string, string>; xml: string }> {
  const folder = path.posix.dirname(backup.dump);
  const dumps = configDumps(domain)
    .map((name) => path.posix.join(folder, name))
    .filter((p) => backup.tree.types.get(p) === 'file');
  if (!backup.inPlace)
    await refuseTaken(
      backup.folder,
      dumps.map((p) => path.join(backup.folder, path.posix.basename(p))),
    );
  const staged = await backup.tree.fetch(dumps, staging);
  return { staged, xml: await readFile(staged.get(backup.dump) ?? '', 'utf8') };
}

async function hostOffersEmulator(ctx: OpsContext, emulator: string): Promise<boolean> {
  const id = await fileId(emulator);
  if (id === undefined) return false;
  const offered = await Promise.all((await ctx.host.virsh.emulators()).map(fileId));
  return offered.includes(id);
}

/**
 * The disks to restore and the definition with its console logs moved from the original folders
 * into the target folder, once it is known to reach nothing of the host beyond them (unless kept)
 * and its UUID is no other defined domain's.
 */
async function checkDefinition(
  ctx: OpsContext,
  xml: string,
  backup: OpenedBackup,
  domain: string,
  request: RestoreRequest,
): Promise<{ disks: XmlDisk[]; xml: string }> {
  const what = `the config dump ${backup.dump} of ${backup.tree.what}`;
  const definition = parseDomainXml(xml, what);
  const disks = definition.disks.filter((d) => !isIgnoredDevice(d) && unsupportedReason(d) === undefined);
  if (disks.length === 0)
    throw new UserError(
      `${what} names no qcow2 or raw file disk of '${domain}' to restore. Nothing was restored.`,
    );
  const originalFolders = new Set(disks.map((d) => path.dirname(d.source ?? '')));
  const relocated = relocateCharDeviceFiles(xml, (file) =>
    originalFolders.has(path.dirname(file)) ? path.join(backup.folder, path.basename(file)) : file,
  );
  const { reaches, emulator } = hostReaches(relocated, new Set(disks.map((d) => d.target)), backup.folder);
  const refused = reaches
    .filter((r) => !request.keep.includes(r.keep))
    .map((r) => `${r.element} (--keep-device ${r.keep})`);
  if (
    emulator !== undefined &&
    !request.keep.includes('emulator') &&
    !(await hostOffersEmulator(ctx, emulator))
  )
    refused.push(
      `<emulator>${emulator}</emulator> is no emulator this host's libvirt offers (--keep-device emulator)`,
    );
  if (refused.length > 0)
    throw new UserError(
      `${what} gives the domain host resources that the restore does not provide; nothing was restored:\n` +
        refused.map((r) => `  ${r}\n`).join('') +
        'Keep one only when this host should hand it to the restored domain: --keep-device WORD[,WORD…].',
    );
  const defining = request.define || request.start;
  if (defining && request.as === undefined && definition.uuid !== '') {
    const uuid = definition.uuid.toLowerCase();
    if ((await ctx.host.virsh.listUuids()).includes(uuid))
      throw new UserError(
        `${what} carries UUID ${uuid}, which a defined domain already has. Nothing was restored. ` +
          `Restore it beside that domain with --as NEWNAME (a new UUID), or undefine that domain first.`,
      );
  }
  return { disks, xml: relocated };
}

/**
 * Moves each staged file into the target folder under its own name, never replacing anything:
 * link(2) fails when the name exists, and only then is the staged name dropped.
 */
async function placeFiles(
  backup: OpenedBackup,
  staged: ReadonlyMap<string, string>,
): Promise<Map<string, string>> {
  if (backup.inPlace) return new Map(staged);
  const destinations = new Map(
    [...staged.keys()].map((p) => [p, path.join(backup.folder, path.posix.basename(p))]),
  );
  const names = [...destinations.values()];
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  if (twice.length > 0)
    throw new UserError(
      `${backup.tree.what} holds several files named ${path.basename(twice[0] ?? '')} for this domain; they cannot ` +
        `share one folder. Nothing was placed.`,
    );
  await refuseTaken(backup.folder, names);
  const placed = new Map<string, string>();
  try {
    for (const [treePath, destination] of destinations) {
      const file = staged.get(treePath) ?? '';
      await link(file, destination);
      placed.set(treePath, destination);
      await unlink(file);
    }
  } catch (error) {
    for (const destination of placed.values()) await unlink(destination).catch(() => undefined);
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new UserError(
        `a file appeared in ${backup.folder} while restoring; restore never overwrites. Nothing was placed.`,
      );
    throw error;
  }
  return placed;
}

/** Points each placed layer at the placed copy of its backing (only the header changes), where it is not already. */
async function relinkChains(
  ctx: OpsContext,
  disks: readonly RestoredDisk[],
  placed: ReadonlyMap<string, string>,
): Promise<string[]> {
  const rebased: string[] = [];
  for (const layer of disks.flatMap((d) => d.layers)) {
    if (layer.backing === undefined || layer.header.backingFilename === undefined) continue;
    const file = placed.get(layer.treePath) ?? '';
    const backing = placed.get(layer.backing) ?? '';
    const recorded = await fileId(resolveBacking(file, layer.header.backingFilename));
    if (recorded !== undefined && recorded === (await fileId(backing))) continue;
    await ctx.host.qemuImg.rebaseUnsafe(file, backing, layer.header.backingFormat ?? 'qcow2');
    rebased.push(file);
  }
  return rebased;
}

/**
 * Walks each placed chain as QEMU will open it, each image with its explicit format: every layer
 * must be one of the restored files (by identity, not path), with no external data file, and pass
 * `qemu-img check`.
 */
async function checkChains(
  ctx: OpsContext,
  disks: readonly RestoredDisk[],
  placed: ReadonlyMap<string, string>,
  name: string,
  folder: string,
): Promise<{ target: string; chain: string[]; format: string }[]> {
  const restored = new Set(await Promise.all([...placed.values()].map(fileId)));
  const problems: string[] = [];
  const result: { target: string; chain: string[]; format: string }[] = [];
  for (const disk of disks) {
    const label = `disk ${disk.target} of '${name}'`;
    const top = disk.layers[0];
    let next: { file: string; format: string } | undefined =
      top === undefined ? undefined : { file: placed.get(top.treePath) ?? '', format: top.format };
    const layers: LayerHeader[] = [];
    const seen = new Set<string>();
    while (next !== undefined) {
      const id = await fileId(next.file);
      if (id === undefined || !restored.has(id) || seen.has(id)) {
        problems.push(`${label}: the chain reaches ${next.file}, which is not one of the restored files`);
        break;
      }
      seen.add(id);
      const header = await ctx.host.qemuImg.header(next.file, next.format);
      if (header.dataFile !== undefined)
        problems.push(`${label}: ${next.file} keeps its data in an external data file ${header.dataFile}`);
      layers.push(header);
      next =
        header.backingFilename === undefined || next.format === 'raw'
          ? undefined
          : {
              file: resolveBacking(next.file, header.backingFilename),
              format: header.backingFormat ?? 'qcow2',
            };
    }
    problems.push(...(await checkLayers(ctx.host.qemuImg, layers, label)));
    result.push({
      target: disk.target,
      chain: layers.map((l) => l.filename),
      format: top?.format ?? 'qcow2',
    });
  }
  if (problems.length > 0)
    throw new UserError(
      `restore of '${name}' found problems; nothing was defined. The restored files are in ${folder}.\n` +
        problems.map((p) => `  ${p}`).join('\n'),
    );
  return result;
}

/** The definition to write: disks on their restored top layers, the asked-for name, a new identity with --as. */
function restoredDefinition(
  xml: string,
  disks: readonly { target: string; chain: readonly string[]; format: string }[],
  /** The disks whose top layer is a block device. */
  devices: ReadonlySet<string>,
  name: string,
  as: string | undefined,
): string {
  const withDisks = setDiskSources(
    xml,
    new Map(disks.map((d) => [d.target, d.chain[0] ?? ''])),
    new Map(disks.map((d) => [d.target, d.format])),
    devices,
  );
  return as === undefined ? setDomainName(withDisks, name) : renameDomainXml(withDisks, as);
}

/**
 * Fetches what the restore places into the staging folder: the config dumps (checked), the plan for
 * the VM's other files, each disk's chain and, from restic, the copies of block devices it ends at.
 */
async function fetchBackup(
  ctx: OpsContext,
  backup: OpenedBackup,
  domain: string,
  request: RestoreRequest,
  staging: string,
) {
  const name = request.as ?? domain;
  // Every fetched file, by tree path: the dumps first, then fetchChains adds the layers.
  const { staged, xml: dumpXml } = await fetchDumps(backup, domain, staging);
  const checked = await checkDefinition(ctx, dumpXml, backup, domain, request);
  const vmPlan = await planVmFiles({
    tree: backup.tree,
    dump: backup.dump,
    domain,
    xml: checked.xml,
    name,
    renamed: request.as !== undefined,
    folder: backup.folder,
    keepHostFile: request.keep.includes('host-file'),
  });
  const refused = `restore of domain '${domain}' from ${backup.tree.what} refused; nothing was placed`;
  const { source } = request;
  const fetched = await fetchChains(
    ctx.host.qemuImg,
    backup,
    checked.disks,
    { staging, staged },
    refused,
    source.kind === 'restic',
  );
  const { chains, writes } =
    source.kind === 'restic'
      ? await fetchDeviceCopies(
          ctx.host,
          {
            ...source,
            domain,
            snapshot: backup.tree.snapshot ?? '',
            deviceTo: request.deviceTo ?? new Map(),
          },
          fetched,
          { staging, staged },
          refused,
        )
      : { chains: fetched, writes: [] };
  return { staged, checked, vmPlan, chains, writes };
}

/**
 * `restore DOMAIN --from restic[:ID] | DIR`: reads the backup's tree (never trusting its paths),
 * fetches only the config dumps and each disk's chain into a private staging folder, checks them,
 * places them in the one target folder without overwriting anything, rebuilds and checks each chain
 * there, and writes a definition that runs the disks from their top frozen layers.
 */
export async function restoreDomain(
  ctx: OpsContext,
  domain: string,
  request: RestoreRequest,
): Promise<RestoreResult> {
  const name = request.as ?? domain;
  if (request.define || request.start) await refuseDomainInUse(ctx, name);
  const backup = await openBackup(ctx, domain, request);
  const definition = path.join(backup.folder, `${name}-restored.xml`);
  await refuseTaken(backup.folder, [definition]);
  const { staging, created } = await openTarget(backup.folder);
  let placed: Map<string, string> | undefined;
  try {
    const { staged, checked, vmPlan, chains, writes } = await fetchBackup(
      ctx,
      backup,
      domain,
      request,
      staging,
    );
    const { source } = request;
    placed = await placeFiles(backup, staged);
    if (source.kind === 'restic')
      for (const [key, device] of await writeDevices(source.restic, writes)) placed.set(key, device);
    const rebased = await relinkChains(ctx, chains, placed);
    const disks = await checkChains(ctx, chains, placed, name, backup.folder);
    const vmFiles = await placeVmFiles(vmPlan, staging, ctx.host.runner);
    for (const note of vmPlan.notes) ctx.log(`${name}: ${note}`);
    const devices = new Set(writes.filter((w) => w.top).map((w) => w.target));
    const xml = setVmFiles(
      restoredDefinition(checked.xml, disks, devices, name, request.as),
      vmPlan.placement,
    );
    await writeFile(definition, xml, { mode: 0o600, flag: 'wx' });
    if (request.define || request.start) await ctx.host.virsh.define(xml, name);
    if (request.start) await ctx.host.virsh.start(name);
    return {
      domain,
      name,
      ...(backup.tree.snapshot === undefined ? {} : { snapshot: backup.tree.snapshot }),
      folder: backup.folder,
      definition,
      disks,
      vmFiles,
      rebased,
      defined: request.define || request.start,
      started: request.start,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
    if (created && placed === undefined) await rmdir(backup.folder).catch(() => undefined);
  }
}
