import path from 'node:path';
import { UserError } from '../errors.js';
import { charDeviceFiles } from './domainxml.js';
import type { Node } from './xmltree.js';
import { child, childrenOf, parser, tagOf, textOf } from './xmltree.js';

/** What `restore --keep-device` can keep of a definition's reach into the host. */
export const keepWords = [
  'host-disk',
  'hostdev',
  'filesystem',
  'host-file',
  'qemu-commandline',
  'emulator',
] as const;
export type KeepWord = (typeof keepWords)[number];

/** One element of a definition that gives the domain something of the host's. */
export interface HostReach {
  readonly keep: KeepWord;
  readonly element: string;
}

function attributes(node: Node | undefined): string {
  return Object.entries(node?.[':@'] ?? {})
    .filter(([key]) => !key.startsWith('xmlns'))
    .map(([key, value]) => `${key}='${value}'`)
    .join(' ');
}

function sourceText(node: Node): string {
  const source = child(node, 'source');
  const address = source === undefined ? undefined : child(source, 'address');
  return [attributes(source), attributes(address)].filter((t) => t !== '').join(' ');
}

function isNamespaced(node: Node): boolean {
  const tag = tagOf(node) ?? '';
  return tag.includes(':') || Object.keys(node[':@'] ?? {}).some((k) => k.startsWith('xmlns'));
}

/**
 * Every element of a definition (a config dump read from a backup) that reaches beyond the restored
 * disks into the host: disks not restored (network and pool volumes, other
 * files), PCI/USB/SCSI passthrough, shared host folders, raw QEMU arguments and the emulator
 * binary, and character devices writing to files outside `folder` (libvirt hands such a file to
 * QEMU's user when the domain starts). `restored` holds the targets of the disks restored.
 */
export function hostReaches(
  xml: string,
  restored: ReadonlySet<string>,
  folder: string,
): { reaches: HostReach[]; emulator: string | undefined } {
  let doc: Node[];
  try {
    doc = parser.parse(xml) as Node[];
  } catch (error) {
    throw new UserError(`cannot parse the config dump: ${(error as Error).message}`);
  }
  const root = doc.find((n) => tagOf(n) === 'domain');
  if (!root) throw new UserError('the config dump has no <domain> element');
  const reaches: HostReach[] = [];
  // libvirt reads its qemu namespace (commandline, override, capabilities) by URI, whatever the prefix.
  for (const node of childrenOf(root).filter(isNamespaced))
    reaches.push({ keep: 'qemu-commandline', element: `<${tagOf(node) ?? ''}>` });
  const devices = child(root, 'devices');
  let emulator: string | undefined;
  for (const node of devices === undefined ? [] : childrenOf(devices)) {
    const tag = tagOf(node);
    const source = child(node, 'source');
    if (tag === 'emulator') emulator = textOf(node);
    else if (tag === 'disk') {
      const target = child(node, 'target')?.[':@']?.dev ?? '?';
      if (source !== undefined && !restored.has(target))
        reaches.push({
          keep: 'host-disk',
          element: `disk ${target}: <disk ${attributes(node)}> ${sourceText(node)}`,
        });
    } else if (tag === 'hostdev' || (tag === 'interface' && node[':@']?.type === 'hostdev'))
      reaches.push({ keep: 'hostdev', element: `<${tag} ${attributes(node)}> ${sourceText(node)}` });
    else if (tag === 'filesystem')
      reaches.push({
        keep: 'filesystem',
        element: `<filesystem ${attributes(node)}> ${sourceText(node)} as ${attributes(child(node, 'target'))}`,
      });
    else if (tag !== undefined && isNamespaced(node))
      reaches.push({ keep: 'qemu-commandline', element: `<${tag}> in <devices>` });
  }
  for (const { node, attribute } of charDeviceFiles(devices === undefined ? [] : childrenOf(devices))) {
    const file = node[':@']?.[attribute] ?? '';
    if (path.dirname(file) !== folder)
      reaches.push({
        keep: 'host-file',
        element: `${tagOf(node) ?? ''} ${attribute}='${file}' of a character device`,
      });
  }
  return { reaches, emulator };
}
