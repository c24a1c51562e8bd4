import path from 'node:path';
import type { Host } from '../host/host.js';
import type { XmlDisk } from '../host/domainxml.js';
import { parseDomainXml, parseSnapshotXml } from '../host/domainxml.js';
import type { FileId } from '../host/fileid.js';
import type { LayerHeader } from '../host/qemuimg.js';
import { fileId, lookUp } from '../host/fileid.js';
import { NoSuchDomainError } from '../host/virsh.js';
import { mapConcurrently } from './concurrency.js';

/** How many chains are read at once: each is a qemu-img run that mostly waits on the disk. */
const chainReaders = 4;

/**
 * Which domains reference each file, by identity (DESIGN §4, invariant 1), and what could not be
 * read. While anything could not be read, no file can be proven unreferenced.
 */
export interface References {
  readonly users: ReadonlyMap<FileId, ReadonlySet<string>>;
  /** Each names the domain and the chain or file that could not be read. */
  readonly unreadable: readonly string[];
}

export type Use =
  | { readonly kind: 'unused' }
  | { readonly kind: 'used'; readonly by: readonly string[] }
  | { readonly kind: 'unknown'; readonly why: string };

/**
 * Whether the file `file` (identity `id`) is referenced by a domain other than `self`. Fails
 * closed: a file without identity, or any unreadable chain, makes the answer unknown.
 */
export function useOf(references: References, id: FileId | undefined, file: string, self?: string): Use {
  if (id === undefined) return { kind: 'unknown', why: `the identity of ${file} cannot be established` };
  const by = [...(references.users.get(id) ?? [])].filter((d) => d !== self);
  if (by.length > 0) return { kind: 'used', by };
  if (references.unreadable.length > 0) return { kind: 'unknown', why: references.unreadable.join('; ') };
  return { kind: 'unused' };
}

/** `'a', 'b'`: domain names as messages quote them. */
export function quoted(domains: readonly string[]): string {
  return domains.map((d) => `'${d}'`).join(', ');
}

/** One file a domain names as a disk: in a definition, or in a snapshot's metadata. */
interface Source {
  readonly domain: string;
  readonly file: string;
  /** `disk vda`, `snapshot 's1'`: where the domain names it, for messages. */
  readonly where: string;
}

/**
 * Both definitions (live and persistent) of every domain of the connection, from one batched read;
 * a domain the batch could not read is read alone, and skipped if it was undefined meanwhile.
 */
async function everyDefinition(host: Host): Promise<{ domain: string; xmls: string[] }[]> {
  const result: { domain: string; xmls: string[] }[] = [];
  for (const { name, definitions } of await host.virsh.readAll()) {
    if (definitions !== undefined) {
      result.push({ domain: name, xmls: [definitions.live, definitions.inactive] });
      continue;
    }
    try {
      result.push({
        domain: name,
        xmls: [await host.virsh.dumpXml(name), await host.virsh.dumpXml(name, 'inactive')],
      });
    } catch (error) {
      if (error instanceof NoSuchDomainError) continue; // undefined while we looked
      throw error;
    }
  }
  return result;
}

/** A network disk names no file of this host. */
function namesFile(disk: XmlDisk): disk is XmlDisk & { source: string } {
  return disk.source !== undefined && disk.sourceType !== 'network';
}

/** Each file a domain's definitions name, once; `devices: 'disks'` leaves out cdroms and floppies. */
async function definitionSources(host: Host, devices: 'disks' | 'all'): Promise<Source[]> {
  return (await everyDefinition(host)).flatMap(({ domain, xmls }) => {
    const files = new Map<string, string>();
    for (const disk of xmls.flatMap((xml) => parseDomainXml(xml, `definition of domain '${domain}'`).disks))
      if (namesFile(disk) && (devices === 'all' || disk.device === 'disk'))
        files.set(disk.source, `disk ${disk.target}`);
    return [...files].map(([file, where]) => ({ domain, file, where }));
  });
}

/**
 * The files named by libvirt snapshot metadata: each snapshot's overlays and the disks of the
 * definition it keeps (reverting to it would run them again).
 */
async function snapshotSources(host: Host): Promise<{ sources: Source[]; unreadable: string[] }> {
  const unreadable: string[] = [];
  const perDomain = await mapConcurrently(
    await host.virsh.domainsWithSnapshots(),
    chainReaders,
    async (domain) => {
      try {
        const snapshots = await host.virsh.snapshotNames(domain);
        const sources: Source[] = [];
        for (const snapshot of snapshots) {
          const where = `snapshot '${snapshot}'`;
          const parsed = parseSnapshotXml(
            await host.virsh.snapshotXml(domain, snapshot),
            `${where} of domain '${domain}'`,
          );
          const files = [
            ...parsed.overlays,
            ...parsed.domains.flatMap((d) => d.disks.filter(namesFile).map((disk) => disk.source)),
          ];
          sources.push(...[...new Set(files)].map((file) => ({ domain, file, where })));
        }
        return sources;
      } catch (error) {
        if (error instanceof NoSuchDomainError) return []; // undefined while we looked
        unreadable.push(
          `the snapshot metadata of domain '${domain}' cannot be read (${(error as Error).message})`,
        );
        return [];
      }
    },
  );
  return { sources: perDomain.flat(), unreadable };
}

/** The identity of every layer of the chain a source starts, or why it cannot be established. */
async function chainIds(host: Host, source: Source): Promise<{ ids: FileId[]; unreadable?: string }> {
  const what = `the chain of ${source.where} of domain '${source.domain}' (${source.file})`;
  let layers: string[];
  try {
    layers = (await host.qemuImg.chain(source.file)).map((layer) => layer.filename);
  } catch {
    return walkHeaders(host, source.file, what);
  }
  const ids: FileId[] = [];
  let folder = path.dirname(source.file);
  for (const layer of layers) {
    const file = backingPath(folder, layer);
    const id = await fileId(file);
    if (id === undefined) return { ids, unreadable: `layer ${file} of ${what} cannot be stat'ed` };
    ids.push(id);
    folder = path.dirname(file);
  }
  return { ids };
}

/**
 * A backing file as a layer in `folder` names it, possibly relative to that folder. Joined, not
 * normalized: `..` after a symlinked folder must resolve as the kernel (and QEMU) resolve it.
 */
function backingPath(folder: string, name: string): string {
  return path.isAbsolute(name) ? name : `${folder}/${name}`;
}

/** Chains whose headers name each other in a loop end here instead of being walked for ever. */
const maxLayers = 1000;

/**
 * A chain qemu-img could not open as a whole (a layer is missing or damaged), walked one header at
 * a time: the layers that exist still reference what they name, and a missing one names no file.
 */
async function walkHeaders(
  host: Host,
  top: string,
  what: string,
): Promise<{ ids: FileId[]; unreadable?: string }> {
  const ids: FileId[] = [];
  for (let file: string | undefined = top; file !== undefined && ids.length < maxLayers;) {
    const found = await lookUp(file);
    if (found === 'absent') return { ids };
    if (found === undefined) return { ids, unreadable: `layer ${file} of ${what} cannot be stat'ed` };
    ids.push(found);
    let header: LayerHeader;
    try {
      header = await host.qemuImg.header(file);
    } catch {
      return { ids, unreadable: `${what} cannot be read at ${file}` };
    }
    file =
      header.backingFilename === undefined
        ? undefined
        : backingPath(path.dirname(file), header.backingFilename);
  }
  return ids.length < maxLayers ? { ids } : { ids, unreadable: `${what} is longer than ${maxLayers} layers` };
}

function add(users: Map<FileId, Set<string>>, id: FileId, domain: string): void {
  users.set(id, (users.get(id) ?? new Set<string>()).add(domain));
}

async function readReferences(host: Host): Promise<References> {
  const [definitions, snapshots] = await Promise.all([definitionSources(host, 'all'), snapshotSources(host)]);
  const users = new Map<FileId, Set<string>>();
  const unreadable = [...snapshots.unreadable];
  await mapConcurrently([...definitions, ...snapshots.sources], chainReaders, async (source) => {
    const { ids, unreadable: problem } = await chainIds(host, source);
    for (const id of ids) add(users, id, source.domain);
    if (problem !== undefined) unreadable.push(problem);
  });
  return { users, unreadable };
}

/**
 * Which domains reference each file through the chains of their live and persistent definitions
 * and their snapshot metadata, by identity. Read anew each time: it is the last check before a
 * file is deleted or a base is written. A read that found something unreadable is done once more,
 * as a domain undefined or re-pointed by another run meanwhile reads right the second time.
 */
export async function fileReferences(host: Host): Promise<References> {
  const first = await readReferences(host);
  return first.unreadable.length === 0 ? first : readReferences(host);
}

/**
 * Which domains run from (or are defined on) each file as a disk's top, from their definitions only:
 * cheap enough for every verb, which must not freeze a layer another domain writes to.
 */
async function topReferences(host: Host): Promise<References> {
  const users = new Map<FileId, Set<string>>();
  const unreadable: string[] = [];
  for (const source of await definitionSources(host, 'disks')) {
    const found = await lookUp(source.file);
    if (found === 'absent') continue;
    if (found !== undefined) add(users, found, source.domain);
    else unreadable.push(`${source.file}, ${source.where} of domain '${source.domain}', cannot be stat'ed`);
  }
  return { users, unreadable };
}

const topsByHost = new WeakMap<Host, Promise<References>>();

/**
 * topReferences read once per invocation (one Host), so `backup … all` does not re-read every
 * domain's definitions for every domain. Staleness is harmless here: the only files that appear
 * during the run are new layers, named after their own domain's base and stamp, which no other
 * domain can already use. A read that found something unreadable is not kept.
 */
export async function topReferencesOnce(host: Host): Promise<References> {
  let references = topsByHost.get(host);
  if (references === undefined) {
    references = topReferences(host);
    topsByHost.set(host, references);
  }
  const read = await references;
  if (read.unreadable.length === 0) return read;
  topsByHost.delete(host);
  return topReferences(host);
}
