import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { unsupportedReason } from '../chain/eligibility.js';
import { isIgnoredDevice } from '../chain/model.js';
import { UserError } from '../errors.js';
import { parseDomainXml, renameDomainXml, setDiskSources } from '../host/domainxml.js';
import type { Restic } from '../host/restic.js';
import { NoSuchDomainError } from '../host/virsh.js';
import { checkLayers, resolveBacking, walkChain } from './chaincheck.js';
import type { OpsContext } from './context.js';

/** Where the backup comes from: a restic snapshot (latest of the domain when none is named) or a folder. */
export type RestoreSource =
  | { readonly kind: 'restic'; readonly restic: Restic; readonly snapshot?: string }
  | { readonly kind: 'dir'; readonly dir: string };

export interface RestoreRequest {
  readonly source: RestoreSource;
  /** Default: the original folder (restic), or the folder restored from (dir). */
  readonly to?: string;
  /** A new name, UUID and MAC addresses, so the copy can run beside the original. */
  readonly as?: string;
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
  readonly rebased: readonly string[];
  readonly defined: boolean;
  readonly started: boolean;
}

/** A restored file: where it was when backed up, where it is now. */
interface Placed {
  readonly original: string;
  readonly file: string;
}

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

function refuseFolder(folder: string, files: readonly string[]): void {
  const taken = files.filter((f) => existsSync(f));
  if (taken.length > 0)
    throw new UserError(
      `${taken.length === 1 ? `${taken[0] ?? ''} exists` : `${taken.length} files exist in ${folder}`}; restore never ` +
        `overwrites. Nothing was restored. Give an empty or new folder with --to DIR, or move the old files away.`,
    );
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFile(from, to);
    await rm(from);
  }
}

/** Restores a restic snapshot into a staging folder beside the destination, then moves files in place. */
async function fromRestic(
  ctx: OpsContext,
  domain: string,
  source: Extract<RestoreSource, { kind: 'restic' }>,
  to: string | undefined,
): Promise<{ placed: Placed[]; snapshot: string; folder: string }> {
  const snapshots = await source.restic.snapshots({ tags: [domain] });
  const snapshot =
    source.snapshot === undefined
      ? snapshots.at(-1)
      : snapshots.find((s) => s.id.startsWith(source.snapshot ?? '') || s.shortId === source.snapshot);
  if (snapshot === undefined)
    throw new UserError(
      source.snapshot === undefined
        ? `no restic snapshot of domain '${domain}' in ${source.restic.repositoryText}. List them with: restic snapshots --tag '${domain}'`
        : `no restic snapshot ${source.snapshot} of domain '${domain}' in ${source.restic.repositoryText}. ` +
            `List them with: restic snapshots --tag '${domain}'`,
    );
  const dump = snapshot.paths.find((p) => path.basename(p) === `${domain}-inactive.xml`);
  const originalFolder = path.dirname(dump ?? snapshot.paths[0] ?? '/');
  const folder = to ?? originalFolder;
  const place = (original: string) => (to === undefined ? original : path.join(to, path.basename(original)));
  refuseFolder(folder, snapshot.paths.map(place));
  await mkdir(folder, { recursive: true });
  const staging = await mkdtemp(path.join(path.dirname(folder), '.unifi-backup-restore-'));
  try {
    ctx.log(
      `${domain}: restoring restic snapshot ${snapshot.shortId} (${snapshot.paths.length} files) into ${folder}`,
    );
    await source.restic.restore(snapshot.id, staging);
    const placed: Placed[] = [];
    for (const original of snapshot.paths) {
      const file = place(original);
      await mkdir(path.dirname(file), { recursive: true });
      await moveFile(path.join(staging, original), file);
      placed.push({ original, file });
    }
    return { placed, snapshot: snapshot.shortId, folder };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** A folder holding a backup (a restic restore made by hand, a copy): restored in place or copied to `to`. */
async function fromDir(dir: string, to: string | undefined): Promise<{ placed: Placed[]; folder: string }> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => {
    throw new UserError(`--from ${dir}: no such folder. Give the folder that holds the backed-up layers.`);
  });
  const names = entries.filter((e) => e.isFile()).map((e) => e.name);
  if (to === undefined || path.resolve(to) === dir)
    return {
      placed: names.map((n) => ({ original: path.join(dir, n), file: path.join(dir, n) })),
      folder: dir,
    };
  refuseFolder(
    to,
    names.map((n) => path.join(to, n)),
  );
  await mkdir(to, { recursive: true });
  const placed: Placed[] = [];
  for (const name of names) {
    await copyFile(path.join(dir, name), path.join(to, name));
    placed.push({ original: path.join(dir, name), file: path.join(to, name) });
  }
  return { placed, folder: to };
}

/**
 * `restore DOMAIN --from restic[:ID] | DIR`: puts the backed-up files in place, rebuilds each disk's
 * chain there (backing paths rewritten when the folder moved), checks it, and writes a definition
 * that runs the disks from their top frozen layers (the active layer is never backed up).
 */
export async function restoreDomain(
  ctx: OpsContext,
  domain: string,
  request: RestoreRequest,
): Promise<RestoreResult> {
  const name = request.as ?? domain;
  const to = request.to === undefined ? undefined : path.resolve(request.to);
  if (request.define || request.start) await refuseDomainInUse(ctx, name);

  const restored: { placed: Placed[]; folder: string; snapshot?: string } =
    request.source.kind === 'restic'
      ? await fromRestic(ctx, domain, request.source, to)
      : await fromDir(request.source.dir, to);
  const { placed, folder } = restored;
  const byOriginal = new Map(placed.map((p) => [p.original, p.file]));
  const byName = new Map(placed.map((p) => [path.basename(p.original), p.file]));
  const locate = (original: string) => byOriginal.get(original) ?? byName.get(path.basename(original));

  const dumpFile = byName.get(`${domain}-inactive.xml`);
  if (dumpFile === undefined)
    throw new UserError(
      `the backup of domain '${domain}' holds no ${domain}-inactive.xml config dump, so its definition cannot be ` +
        `rebuilt. The restored files are in ${folder}; define the domain by hand.`,
    );
  const dumpXml = await readFile(dumpFile, 'utf8');
  const definition = parseDomainXml(dumpXml, `config dump ${dumpFile}`);

  const tops = new Map<string, string>();
  const rebased: string[] = [];
  const problems: string[] = [];
  const disks: { target: string; chain: string[] }[] = [];
  for (const disk of definition.disks) {
    if (isIgnoredDevice(disk) || unsupportedReason(disk) !== undefined || disk.source === undefined) continue;
    const label = `disk ${disk.target} of '${name}'`;
    const top = locate(disk.source);
    if (top === undefined) {
      problems.push(
        `${label}: its layer ${path.basename(disk.source)} is not in the backup (was it excluded?)`,
      );
      continue;
    }
    // Walk down the chain, pointing each layer at the restored copy of its backing file.
    let file = top;
    for (;;) {
      const header = await ctx.host.qemuImg.header(file);
      if (header.backingFilename === undefined) break;
      const recorded = resolveBacking(file, header.backingFilename);
      const backing = locate(recorded);
      if (backing === undefined) {
        problems.push(`${label}: backing file ${path.basename(recorded)} of ${file} is not in the backup`);
        break;
      }
      if (backing !== recorded) {
        const format = header.backingFormat ?? (await ctx.host.qemuImg.header(backing)).format;
        await ctx.host.qemuImg.rebaseUnsafe(file, backing, format);
        rebased.push(file);
      }
      file = backing;
    }
    const walk = await walkChain(ctx.host.qemuImg, top, label);
    problems.push(...walk.problems, ...(await checkLayers(ctx.host.qemuImg, walk.layers, label)));
    const outside = walk.layers.filter((l) => !placed.some((p) => p.file === l.filename));
    for (const layer of outside)
      problems.push(`${label}: chain still reaches ${layer.filename} outside the backup`);
    tops.set(disk.target, top);
    disks.push({ target: disk.target, chain: walk.layers.map((l) => l.filename) });
  }
  if (problems.length > 0)
    throw new UserError(
      `restore of domain '${domain}' found problems; nothing was defined. The restored files are in ${folder}.\n` +
        problems.map((p) => `  ${p}`).join('\n'),
    );
  if (tops.size === 0)
    throw new UserError(`the config dump of '${domain}' names no qcow2 file disk to restore.`);

  // The folders the dump's disks lived in when it was written: logs there belong to the original.
  const originalFolders = new Set(
    definition.disks.flatMap((d) =>
      tops.has(d.target) && d.source !== undefined ? [path.dirname(d.source)] : [],
    ),
  );
  let xml = setDiskSources(dumpXml, tops);
  if (request.as !== undefined)
    xml = renameDomainXml(xml, request.as, (file) =>
      originalFolders.has(path.dirname(file)) ? path.join(folder, path.basename(file)) : file,
    );
  const definitionFile = path.join(folder, `${name}-restored.xml`);
  await writeFile(definitionFile, xml, { mode: 0o600 });
  if (request.define || request.start) await ctx.host.virsh.define(xml, name);
  if (request.start) await ctx.host.virsh.start(name);
  return {
    domain,
    name,
    ...(restored.snapshot === undefined ? {} : { snapshot: restored.snapshot }),
    folder,
    definition: definitionFile,
    disks,
    rebased,
    defined: request.define || request.start,
    started: request.start,
  };
}
