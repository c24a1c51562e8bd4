import type { Host } from '../host/host.js';
import { parseDomainXml } from '../host/domainxml.js';
import { NoSuchDomainError } from '../host/virsh.js';
import { mapConcurrently } from './concurrency.js';

/** How many chains are read at once: each is a qemu-img run that mostly waits on the disk. */
const chainReaders = 4;

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

/**
 * Which domains reference each file, through the chains of their live and persistent definitions
 * (DESIGN §4, invariant 1). Read anew each time: it is the last check before a file is deleted or
 * a base is written.
 */
export async function fileReferences(host: Host): Promise<Map<string, Set<string>>> {
  const references = new Map<string, Set<string>>();
  const add = (file: string, domain: string) => {
    const domains = references.get(file) ?? new Set<string>();
    domains.add(domain);
    references.set(file, domains);
  };
  const tops = (await everyDefinition(host)).flatMap(({ domain, xmls }) =>
    [...new Set(xmls.flatMap((xml) => parseDomainXml(xml).disks.map((d) => d.source)))].map((top) => ({
      domain,
      top,
    })),
  );
  await mapConcurrently(tops, chainReaders, async ({ domain, top }) => {
    if (top === undefined) return;
    add(top, domain);
    // A chain we cannot read still references its top; its lower layers stay unknown, so a purge
    // of this host keeps them too (see purgeLayers).
    const chain = await host.qemuImg.chain(top).catch(() => undefined);
    if (chain === undefined) add(unreadableChain, domain);
    for (const layer of chain ?? []) add(layer.filename, domain);
  });
  return references;
}

/** Marker key: some chain on the host could not be read, so no file can be proven unreferenced. */
export const unreadableChain = '\0unreadable-chain';

/**
 * Which domains run from (or are defined on) each file as a disk's top, from their definitions only:
 * cheap enough for every verb, which must not freeze a layer another domain writes to.
 */
async function topReferences(host: Host): Promise<Map<string, Set<string>>> {
  const references = new Map<string, Set<string>>();
  for (const { domain, xmls } of await everyDefinition(host)) {
    for (const disk of xmls.flatMap((xml) => parseDomainXml(xml).disks)) {
      if (disk.source === undefined || disk.device !== 'disk') continue;
      references.set(disk.source, (references.get(disk.source) ?? new Set<string>()).add(domain));
    }
  }
  return references;
}

const topsByHost = new WeakMap<Host, Promise<Map<string, Set<string>>>>();

/**
 * topReferences read once per invocation (one Host), so `backup … all` does not re-read every
 * domain's definitions for every domain. Staleness is harmless here: the only files that appear
 * during the run are new layers, named after their own domain's base and stamp, which no other
 * domain can already use.
 */
export function topReferencesOnce(host: Host): Promise<Map<string, Set<string>>> {
  let references = topsByHost.get(host);
  if (references === undefined) {
    references = topReferences(host);
    topsByHost.set(host, references);
  }
  return references;
}
