import type { Host } from '../host/host.js';
import { parseDomainXml } from '../host/domainxml.js';
import { NoSuchDomainError } from '../host/virsh.js';

/**
 * Every file any chain of any domain on the host references, through live and persistent
 * definitions (DESIGN §4, invariant 1). Read anew each time: it is the last check before a delete.
 */
export async function referencedFiles(host: Host): Promise<Set<string>> {
  const files = new Set<string>();
  for (const domain of await host.virsh.listDomains()) {
    let xmls: string[];
    try {
      xmls = [await host.virsh.dumpXml(domain), await host.virsh.dumpXml(domain, 'inactive')];
    } catch (error) {
      if (error instanceof NoSuchDomainError) continue; // undefined while we looked
      throw error;
    }
    const tops = new Set(xmls.flatMap((xml) => parseDomainXml(xml).disks.map((d) => d.source)));
    for (const top of tops) {
      if (top === undefined) continue;
      files.add(top);
      const chain = await host.qemuImg.chain(top).catch(() => []);
      for (const layer of chain) files.add(layer.filename);
    }
  }
  return files;
}
