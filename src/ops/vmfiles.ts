import { existsSync, lstatSync, readdirSync, realpathSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DomainState } from '../chain/model.js';
import { isActive } from '../chain/model.js';
import { UserError } from '../errors.js';
import { parseVmFiles } from '../host/vmfilexml.js';
import { writeStateFile } from '../state/write.js';
import type { OpsContext } from './context.js';

/**
 * The copies of a domain's UEFI variable store and TPM state that `files` lists, beside its config
 * dumps: `<domain>.nvram` and `<domain>.swtpm.<tpm2|tpm1_2>.<file>`. The originals change whenever
 * the firmware or the TPM writes them, so restic reads a copy taken while nothing could write.
 */
export function nvramCopy(folder: string, domain: string): string {
  return path.join(folder, `${domain}.nvram`);
}

export const tpmVersionFolders = ['tpm2', 'tpm1_2'] as const;

const tpmPrefix = (domain: string) => `${domain}.swtpm.`;

/** The TPM state copies of `domain` among `names` (the entries of its folder): version folder and file name. */
export function tpmCopies(
  domain: string,
  names: readonly string[],
): { name: string; folder: string; file: string }[] {
  const prefix = tpmPrefix(domain);
  return names.flatMap((name) => {
    if (!name.startsWith(prefix)) return [];
    const rest = name.slice(prefix.length);
    const folder = tpmVersionFolders.find((f) => rest.startsWith(`${f}.`));
    const file = folder === undefined ? '' : rest.slice(folder.length + 1);
    return folder === undefined || !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(file)
      ? []
      : [{ name, folder, file }];
  });
}

/** The regular files of a TPM state folder's version folders (swtpm's lock file left out). */
async function tpmStateFiles(tpm: string): Promise<{ folder: string; file: string; source: string }[]> {
  const found: { folder: string; file: string; source: string }[] = [];
  for (const folder of tpmVersionFolders) {
    const entries = await readdir(path.join(tpm, folder), { withFileTypes: true }).catch(() => []);
    for (const entry of entries)
      if (entry.isFile() && entry.name !== '.lock')
        found.push({ folder, file: entry.name, source: path.join(tpm, folder, entry.name) });
  }
  return found;
}

/**
 * Copies the variable store and TPM state of the domain beside its config dumps. A running domain's
 * vCPUs are paused while the files are read (in memory; a few milliseconds), so neither the firmware
 * nor the guest's TPM driver can be writing them; it runs again before anything is written. Copies
 * the domain no longer has are removed. Returns a note per file kind copied.
 */
export async function captureVmFiles(
  ctx: OpsContext,
  state: DomainState,
  liveXml: string,
  folder: string,
): Promise<string[]> {
  const xml = parseVmFiles(liveXml, `definition of domain '${state.name}'`);
  const tpmFiles = xml.tpm === undefined ? [] : await tpmStateFiles(xml.tpm);
  const sources = [...(xml.nvram === undefined ? [] : [xml.nvram]), ...tpmFiles.map((f) => f.source)];
  const pause = sources.length > 0 && isActive(state) && state.runState !== 'paused';
  const contents = new Map<string, Buffer>();
  if (pause) await ctx.host.virsh.suspend(state.name);
  try {
    for (const source of sources) contents.set(source, await readVmFile(source, state.name));
  } finally {
    if (pause) await ctx.host.virsh.resume(state.name);
  }
  const written = new Set<string>();
  const write = (file: string, source: string) => {
    writeStateFile(file, contents.get(source) ?? Buffer.alloc(0));
    written.add(path.basename(file));
  };
  if (xml.nvram !== undefined) write(nvramCopy(folder, state.name), xml.nvram);
  for (const f of tpmFiles)
    write(path.join(folder, `${tpmPrefix(state.name)}${f.folder}.${f.file}`), f.source);
  const stale = [
    ...tpmCopies(state.name, readdirSync(folder)).map((c) => c.name),
    ...(existsSync(nvramCopy(folder, state.name)) ? [path.basename(nvramCopy(folder, state.name))] : []),
  ].filter((name) => !written.has(name));
  for (const name of stale) await rm(path.join(folder, name), { force: true });
  return [
    ...(xml.nvram === undefined ? [] : [`UEFI variable store copied to ${nvramCopy(folder, state.name)}`]),
    ...(tpmFiles.length === 0 ? [] : [`TPM state (${tpmFiles.length} files) copied beside the config dumps`]),
    ...(pause && contents.size > 0 ? ['vCPUs paused while the copies were read'] : []),
  ];
}

async function readVmFile(file: string, domain: string): Promise<Buffer> {
  const info = lstatSync(file, { throwIfNoEntry: false });
  if (info === undefined || !info.isFile())
    throw new UserError(
      `domain '${domain}': ${file}, which its definition makes part of the VM, is ${info === undefined ? 'missing' : 'not a regular file'}. ` +
        'The disks were snapshotted; the file was not copied. Check the path in its definition (virsh dumpxml).',
    );
  return readFile(file);
}

/**
 * The files besides the disks that restic must read: the copies of the variable store and TPM state
 * (those a backup made), then the kernel, initrd and device tree of a direct-kernel boot.
 */
export function listedVmFiles(liveXml: string, folder: string | undefined, domain: string): string[] {
  const xml = parseVmFiles(liveXml, `definition of domain '${domain}'`);
  const copies =
    folder === undefined
      ? []
      : [
          ...(existsSync(nvramCopy(folder, domain)) ? [nvramCopy(folder, domain)] : []),
          ...tpmCopies(domain, readdirSync(folder).sort()).map((c) => path.join(folder, c.name)),
        ];
  // restic keeps a symlink as a link: for a kernel named through one (/vmlinuz), the file it points at.
  const boot = xml.boot
    .map((b) =>
      lstatSync(b.file, { throwIfNoEntry: false })?.isSymbolicLink() === true ? realpathSync(b.file) : b.file,
    )
    .filter((f) => lstatSync(f, { throwIfNoEntry: false })?.isFile() === true);
  return [...copies, ...boot];
}
