import type { DiskDefinition, DiskDevice } from '../chain/model.js';
import { UserError } from '../errors.js';
import type { Node } from './xmltree.js';
import { builder, child, childrenOf, parser, tagOf, textOf } from './xmltree.js';

/** A disk as the domain XML describes it (the chain comes from qemu-img, not from here). */
export type XmlDisk = DiskDefinition;

export interface DomainXml {
  readonly name: string;
  readonly uuid: string;
  readonly disks: readonly XmlDisk[];
}

function parseDocument(xml: string, what: string): Node {
  let doc: Node[];
  try {
    doc = parser.parse(xml) as Node[];
  } catch (error) {
    throw new UserError(`cannot parse ${what}: ${(error as Error).message}`);
  }
  const root = doc.find((n) => tagOf(n) === 'domain');
  if (!root) throw new UserError(`${what} has no <domain> element`);
  return root;
}

function diskNodes(root: Node): Node[] {
  return childrenOf(child(root, 'devices') ?? {}).filter((n) => tagOf(n) === 'disk');
}

function toXmlDisk(node: Node): XmlDisk | undefined {
  const attrs = node[':@'] ?? {};
  const target = child(node, 'target')?.[':@']?.dev;
  if (target === undefined) return undefined;
  const source = child(node, 'source')?.[':@'];
  return {
    target,
    device: (attrs.device ?? 'disk') as DiskDevice,
    sourceType: attrs.type ?? 'file',
    driverType: child(node, 'driver')?.[':@']?.type,
    source: source?.file ?? source?.dev ?? source?.name ?? source?.volume,
    readonly: child(node, 'readonly') !== undefined,
  };
}

export function parseDomainXml(xml: string, what = 'domain XML'): DomainXml {
  return domainOf(parseDocument(xml, what));
}

function domainOf(root: Node): DomainXml {
  return {
    name: textOf(child(root, 'name')) ?? '',
    uuid: textOf(child(root, 'uuid')) ?? '',
    disks: diskNodes(root)
      .map(toXmlDisk)
      .filter((d): d is XmlDisk => d !== undefined),
  };
}

/**
 * Points the named disks at new top files, dropping the `<backingStore>` libvirt recorded for the
 * old top: libvirt reads the new chain from the qcow2 headers when it next starts. A top is qcow2
 * unless `formats` names another format for its target (a raw base that is the whole chain again),
 * and a file unless `devices` holds its target (a block-device base: `<disk type='block'>`).
 */
export function setDiskSources(
  xml: string,
  sources: ReadonlyMap<string, string>,
  formats: ReadonlyMap<string, string> = new Map(),
  devices: ReadonlySet<string> = new Set(),
): string {
  const doc = parser.parse(xml) as Node[];
  const root = doc.find((n) => tagOf(n) === 'domain');
  if (!root) throw new UserError('domain XML has no <domain> element');
  const seen = new Set<string>();
  for (const disk of diskNodes(root)) {
    const target = child(disk, 'target')?.[':@']?.dev;
    const file = target === undefined ? undefined : sources.get(target);
    if (target === undefined || file === undefined) continue;
    seen.add(target);
    const kids = childrenOf(disk);
    const tag = tagOf(disk) ?? 'disk';
    disk[tag] = kids.filter((c) => tagOf(c) !== 'backingStore');
    const device = devices.has(target);
    const attrs = disk[':@'] ?? {};
    if (attrs.type === 'file' || attrs.type === 'block' || attrs.type === undefined)
      disk[':@'] = { ...attrs, type: device ? 'block' : 'file' };
    const source = child(disk, 'source');
    if (source)
      source[':@'] = {
        ...Object.fromEntries(
          Object.entries(source[':@'] ?? {}).filter(([k]) => k !== 'file' && k !== 'dev'),
        ),
        [device ? 'dev' : 'file']: file,
      };
    const driver = child(disk, 'driver');
    if (driver) driver[':@'] = { ...driver[':@'], type: formats.get(target) ?? 'qcow2' };
  }
  const missing = [...sources.keys()].filter((t) => !seen.has(t));
  if (missing.length > 0) throw new UserError(`domain XML has no disk ${missing.join(', ')}`);
  return builder.build(doc);
}

/** What a libvirt snapshot's metadata names: the overlays it made and the definitions it keeps. */
export interface SnapshotFiles {
  /** The source files of its `<disks>` (for an external snapshot, the overlays it created). */
  readonly overlays: readonly string[];
  /** The definitions it keeps: `<domain>`, and `<inactiveDomain>` when a running domain's persistent one differed. */
  readonly domains: readonly DomainXml[];
}

export function parseSnapshotXml(xml: string, what: string): SnapshotFiles {
  let doc: Node[];
  try {
    doc = parser.parse(xml) as Node[];
  } catch (error) {
    throw new UserError(`cannot parse ${what}: ${(error as Error).message}`);
  }
  const root = doc.find((n) => tagOf(n) === 'domainsnapshot');
  if (!root) throw new UserError(`${what} has no <domainsnapshot> element`);
  const overlays = childrenOf(child(root, 'disks') ?? {})
    .filter((n) => tagOf(n) === 'disk')
    .map((n) => child(n, 'source')?.[':@'])
    .map((source) => source?.file ?? source?.dev)
    .filter((file): file is string => file !== undefined);
  const domains = childrenOf(root)
    .filter((n) => tagOf(n) === 'domain' || tagOf(n) === 'inactiveDomain')
    .map(domainOf);
  return { overlays, domains };
}

export interface SnapshotDiskSpec {
  readonly target: string;
  /** The new overlay file; undefined leaves the disk out of the snapshot. */
  readonly file: string | undefined;
}

/** A `<domainsnapshot>` for an external disk-only (or disk + memory) snapshot. */
export function snapshotXml(name: string, disks: readonly SnapshotDiskSpec[], memoryFile?: string): string {
  const diskNodesXml = disks.map((d) =>
    d.file === undefined
      ? { disk: [], ':@': { name: d.target, snapshot: 'no' } }
      : {
          disk: [
            { driver: [], ':@': { type: 'qcow2' } },
            { source: [], ':@': { file: d.file } },
          ],
          ':@': { name: d.target, snapshot: 'external' },
        },
  );
  const memory =
    memoryFile === undefined ? [] : [{ memory: [], ':@': { snapshot: 'external', file: memoryFile } }];
  const doc = [
    {
      domainsnapshot: [{ name: [{ '#text': name }] }, ...memory, { disks: diskNodesXml }],
    },
  ];
  return builder.build(doc);
}

/** The definition with `<name>` set to `name` (a config dump read from a backup may carry any name). */
export function setDomainName(xml: string, name: string): string {
  const doc = parser.parse(xml) as Node[];
  const root = doc.find((n) => tagOf(n) === 'domain');
  if (!root) throw new UserError('domain XML has no <domain> element');
  root.domain = [{ name: [{ '#text': name }] }, ...childrenOf(root).filter((c) => tagOf(c) !== 'name')];
  return builder.build(doc);
}

/** Character devices (serial, console, parallel, channel) whose output QEMU writes to a host file. */
const charDevices = new Set(['serial', 'console', 'parallel', 'channel']);

/** Every host file a character device writes: a `type='file'` source path, or its `<log file=…>`. */
export function charDeviceFiles(devices: readonly Node[]): { node: Node; attribute: 'path' | 'file' }[] {
  return devices.flatMap((device) => {
    if (!charDevices.has(tagOf(device) ?? '')) return [];
    const source = child(device, 'source');
    const log = child(device, 'log');
    return [
      ...(device[':@']?.type === 'file' && source?.[':@']?.path !== undefined
        ? [{ node: source, attribute: 'path' as const }]
        : []),
      ...(log?.[':@']?.file === undefined ? [] : [{ node: log, attribute: 'file' as const }]),
    ];
  });
}

/** The definition with each character device's host file moved by `relocate`. */
export function relocateCharDeviceFiles(xml: string, relocate: (file: string) => string): string {
  const doc = parser.parse(xml) as Node[];
  const root = doc.find((n) => tagOf(n) === 'domain');
  if (!root) throw new UserError('domain XML has no <domain> element');
  const devices = child(root, 'devices');
  for (const { node, attribute } of charDeviceFiles(devices ? childrenOf(devices) : [])) {
    const attrs = node[':@'] ?? {};
    node[':@'] = { ...attrs, [attribute]: relocate(attrs[attribute] ?? '') };
  }
  return builder.build(doc);
}

/**
 * A copy of a definition that can run beside the original: a new name, no UUID and no MAC
 * addresses (libvirt generates fresh ones).
 */
export function renameDomainXml(xml: string, name: string): string {
  const doc = parser.parse(xml) as Node[];
  const root = doc.find((n) => tagOf(n) === 'domain');
  if (!root) throw new UserError('domain XML has no <domain> element');
  const nameNode = child(root, 'name');
  if (nameNode) nameNode.name = [{ '#text': name }];
  root.domain = childrenOf(root).filter((c) => tagOf(c) !== 'uuid');
  const devices = child(root, 'devices');
  for (const device of devices ? childrenOf(devices) : []) {
    const tag = tagOf(device);
    if (tag === 'interface') device[tag] = childrenOf(device).filter((c) => tagOf(c) !== 'mac');
  }
  return builder.build(doc);
}
