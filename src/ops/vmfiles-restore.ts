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
  readonly staging: string;
  readonly runner: Runner;
}

export interface RestoredVmFiles {
  readonly placement: VmFilesPlacement;
  /** Every file written: in the target folder, and the TPM state under libvirt's swtpm folder. */
  readonly files: readonly string[];
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
 * Puts back the VM's files besides its disks: the variable store copy as `<name>_VARS.fd` and the
 * direct-kernel files as `<name>.kernel|initrd|dtb` in the target folder, and the TPM state into
 * libvirt's folder for the domain's UUID (a new one with `--as`). Paths in the backup only find the
 * files in its tree; every destination is the tool's own, and none may exist yet.
 */
export async function restoreVmFiles(request: VmFilesRequest): Promise<RestoredVmFiles> {
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
  const nvram = xml.nvram !== undefined && isFile(nvramTree) ? names.nvram : undefined;
  if (nvram !== undefined) wanted.push({ treePath: nvramTree, destination: nvram });
  else if (xml.nvram !== undefined)
    notes.push(`the backup holds no copy of the UEFI variable store; the definition keeps ${xml.nvram}`);

  const boot = new Map<BootElement, string>();
  for (const { element, file } of xml.boot) {
    const treePath = locate(tree, file, near);
    if (!isFile(treePath)) {
      notes.push(`the backup holds no ${element} ${file}; the definition keeps pointing at it`);
      continue;
    }
    boot.set(element, names.boot(element));
    wanted.push({ treePath, destination: names.boot(element) });
  }

  const beside = [...tree.types]
    .filter(([p, type]) => type === 'file' && path.posix.dirname(p) === near)
    .map(([p]) => path.posix.basename(p));
  const tpm = xml.tpm === undefined ? [] : tpmCopies(domain, beside);
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
  const owner = tpmFolder === undefined ? undefined : await swtpmOwner(request.runner);
  const staged = await tree.fetch(
    wanted.map((w) => w.treePath),
    request.staging,
  );
  for (const w of wanted) {
    await mkdir(path.dirname(w.destination), { recursive: true, mode: 0o700 });
    await copyFile(staged.get(w.treePath) ?? '', w.destination, constants.COPYFILE_EXCL);
    await chmod(w.destination, 0o600);
  }
  if (tpmFolder !== undefined && owner !== undefined) await handOver(tpmFolder, owner);
  return {
    placement: {
      ...(nvram === undefined ? {} : { nvram }),
      boot,
      ...(uuid === undefined ? {} : { uuid }),
      tpm: tpmFolder !== undefined,
    },
    files: wanted.map((w) => w.destination),
    notes,
  };
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
