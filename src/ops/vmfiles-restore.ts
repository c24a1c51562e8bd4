import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, chown, copyFile, lstat, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { parseDomainXml } from '../host/domainxml.js';
import type { Runner } from '../host/runner.js';
import { swtpmOwner } from '../host/swtpm.js';
import type { BootElement, VmFilesPlacement } from '../host/vmfilexml.js';
import { parseVmFiles, swtpmRoot } from '../host/vmfilexml.js';
import type { BackupTree } from './backuptree.js';
import { locate } from './backuptree.js';
import { tpmCopies } from './vmfiles.js';

export interface VmFilesRequest {
  readonly tree: BackupTree;
  /** The tree path of the inactive config dump: the copies were written beside it. */
  readonly dump: string;
  readonly domain: string;
  /** The checked definition read from the dump. */
  readonly xml: string;
  /** The restored domain's name, and whether it is a copy beside the original (`--as`). */
  readonly name: string;
  readonly renamed: boolean;
  readonly folder: string;
  /** `--keep-device host-file`: a variable store the backup holds no copy of may stay where the dump names it. */
  readonly keepHostFile: boolean;
}

/** What restore will put back, decided before anything is fetched. */
export interface VmFilesPlan {
  readonly tree: BackupTree;
  readonly wanted: readonly Wanted[];
  readonly tpmFolder: string | undefined;
  readonly placement: VmFilesPlacement;
  readonly notes: readonly string[];
}

interface Wanted {
  readonly treePath: string;
  readonly destination: string;
}

/** The restored name of each file: the domain's own, never a name from the backup. */
export function restoredNames(folder: string, name: string) {
  return {
    nvram: path.join(folder, `${name}_VARS.fd`),
    boot: (element: BootElement) => path.join(folder, `${name}.${element}`),
  };
}

/**
 * Where the backed-up variable store goes, or undefined when the dump names none or the backup holds
 * no copy (refused unless the host file is kept: QEMU would write to it).
 */
function nvramDestination(
  named: string | undefined,
  copied: boolean,
  destination: string,
  keepHostFile: boolean,
  what: string,
  notes: string[],
): string | undefined {
  if (named === undefined) return undefined;
  if (copied) return destination;
  if (!keepHostFile)
    throw new UserError(
      `${what} names the UEFI variable store ${named}, and the backup holds no copy of it (a backup made ` +
        'before variable stores were copied, or not by this tool); QEMU would write to that host file. Nothing ' +
        'was restored. Keep it only when this host should hand it to the restored domain: --keep-device host-file.',
    );
  notes.push(`the backup holds no copy of the UEFI variable store; the definition keeps ${named}`);
  return undefined;
}

/** The names of the files directly in a folder of the backup's tree. */
function filesIn(tree: VmFilesRequest['tree'], folder: string): string[] {
  return [...tree.types]
    .filter(([p, type]) => type === 'file' && path.posix.dirname(p) === folder)
    .map(([p]) => path.posix.basename(p));
}

/**
 * Which of the VM's files besides its disks restore puts back: the variable store copy as
 * `<name>_VARS.fd` and the direct-kernel files as `<name>.kernel|initrd|dtb` in the target folder,
 * and the TPM state into libvirt's folder for the domain's UUID (a new one with `--as`). Paths in
 * the backup only find the files in its tree; every destination is the tool's own, and none may
 * exist yet. A variable store the backup holds no copy of is refused unless kept: QEMU would write
 * to the host file the dump names.
 */
export async function planVmFiles(request: VmFilesRequest): Promise<VmFilesPlan> {
  const { tree, domain, name, folder } = request;
  const what = `the config dump ${request.dump} of ${tree.what}`;
  const xml = parseVmFiles(request.xml, what);
  const near = path.posix.dirname(request.dump);
  const isFile = (treePath: string | undefined): treePath is string =>
    treePath !== undefined && tree.types.get(treePath) === 'file';
  const names = restoredNames(folder, name);
  const wanted: Wanted[] = [];
  const notes: string[] = [];

  const nvramTree = path.posix.join(near, `${domain}.nvram`);
  const nvram = nvramDestination(
    xml.nvram,
    isFile(nvramTree),
    names.nvram,
    request.keepHostFile,
    what,
    notes,
  );
  if (nvram !== undefined) wanted.push({ treePath: nvramTree, destination: nvram });

  const boot = new Map<BootElement, string>();
  for (const { element, file } of xml.boot) {
    const treePath = locate(tree, file, near);
    if (!isFile(treePath))
      notes.push(`the backup holds no ${element} ${file}; the definition keeps pointing at it`);
    else {
      boot.set(element, names.boot(element));
      wanted.push({ treePath, destination: names.boot(element) });
    }
  }

  const tpm = xml.tpm === undefined ? [] : tpmCopies(domain, filesIn(tree, near));
  const original = parseDomainXml(request.xml, what).uuid.toLowerCase();
  const uuid = tpm.length > 0 && (request.renamed || original === '') ? randomUUID() : undefined;
  const tpmFolder = tpm.length > 0 ? path.join(swtpmRoot, uuid ?? original) : undefined;
  for (const copy of tpm)
    wanted.push({
      treePath: path.posix.join(near, copy.name),
      destination: path.join(tpmFolder ?? '', copy.folder, copy.file),
    });
  if (xml.tpm !== undefined && tpm.length === 0)
    notes.push('the backup holds no TPM state; the TPM starts empty');

  await refuseExisting([
    ...wanted.map((w) => w.destination),
    ...(tpmFolder === undefined ? [] : [tpmFolder]),
  ]);
  return {
    tree,
    wanted,
    tpmFolder,
    placement: {
      ...(nvram === undefined ? {} : { nvram }),
      boot,
      ...(uuid === undefined ? {} : { uuid }),
      tpm: tpmFolder !== undefined,
    },
    notes,
  };
}

/** Fetches and copies the planned files into place; returns every file written. */
export async function placeVmFiles(plan: VmFilesPlan, staging: string, runner: Runner): Promise<string[]> {
  const { tree, wanted, tpmFolder } = plan;
  const owner = tpmFolder === undefined ? undefined : await swtpmOwner(runner);
  const staged = await tree.fetch(
    wanted.map((w) => w.treePath),
    staging,
  );
  for (const w of wanted) {
    await mkdir(path.dirname(w.destination), { recursive: true, mode: 0o700 });
    await copyFile(staged.get(w.treePath) ?? '', w.destination, constants.COPYFILE_EXCL);
    await chmod(w.destination, 0o600);
  }
  if (tpmFolder !== undefined && owner !== undefined) await handOver(tpmFolder, owner);
  return wanted.map((w) => w.destination);
}

/** The TPM state folder and everything in it, given to the user libvirt runs swtpm as. */
async function handOver(folder: string, owner: { uid: number; gid: number }): Promise<void> {
  await chown(folder, owner.uid, owner.gid);
  for (const entry of await readdir(folder, { recursive: true }))
    await chown(path.join(folder, entry), owner.uid, owner.gid);
}

async function refuseExisting(files: readonly string[]): Promise<void> {
  for (const file of files)
    if (
      await lstat(file).then(
        () => true,
        () => false,
      )
    )
      throw new UserError(
        `${file} exists; restore never overwrites. Nothing of the VM's files was placed. Move it away, or ` +
          'restore beside with --as NEWNAME (its own files and UUID).',
      );
}
