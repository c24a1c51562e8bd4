import path from 'node:path';
import { UserError } from '../errors.js';
import { replicaLogName } from '../naming.js';
import { setDiskSources } from './domainxml.js';
import type { Node } from './xmltree.js';
import { builder, childrenOf, parser, tagOf } from './xmltree.js';

function setChildren(node: Node, children: Node[]): void {
  node[tagOf(node) ?? 'domain'] = children;
}

export interface ReplicaIdentity {
  readonly name: string;
  readonly uuid: string;
  /** One MAC per `<interface>`, in document order; reused across syncs so the replica keeps them. */
  readonly macs: readonly string[];
  /** New top file (absolute path) by disk target. */
  readonly sources: ReadonlyMap<string, string>;
  /** The format of a top that is not qcow2 (a copied raw base), by disk target. */
  readonly formats?: ReadonlyMap<string, string>;
  /** Disks that do not take part: left out, so the replica never shares a file with its source. */
  readonly dropTargets: ReadonlySet<string>;
  /** Where the replica's own console/serial log files go (libvirt will not share one between domains). */
  readonly logDir: string;
}

const chardevTags = new Set(['serial', 'console', 'parallel', 'channel']);

function ownLog(file: string, identity: ReplicaIdentity): string {
  return path.join(identity.logDir, replicaLogName(identity.name, path.basename(file)));
}

/** How many `<interface>` elements the definition has: how many MACs its replica needs. */
export function interfaceCount(xml: string): number {
  const root = rootOf(parser.parse(xml) as Node[]);
  return childrenOf(devicesOf(root)).filter((n) => tagOf(n) === 'interface').length;
}

function rootOf(doc: Node[]): Node {
  const root = doc.find((n) => tagOf(n) === 'domain');
  if (!root) throw new UserError('domain XML has no <domain> element');
  return root;
}

function devicesOf(root: Node): Node {
  return childrenOf(root).find((n) => tagOf(n) === 'devices') ?? {};
}

/**
 * The replica's definition made from the source's inactive definition: its own name, UUID and MACs
 * (so both can run side by side) and its disks in DIR.
 */
export function replicaXml(sourceXml: string, identity: ReplicaIdentity): string {
  const doc = parser.parse(setDiskSources(sourceXml, identity.sources, identity.formats)) as Node[];
  const root = rootOf(doc);
  let macIndex = 0;
  const devices = devicesOf(root);
  setChildren(
    devices,
    childrenOf(devices).filter((node) => {
      if (tagOf(node) !== 'disk') return true;
      const target = childrenOf(node).find((c) => tagOf(c) === 'target')?.[':@']?.dev;
      return target === undefined || !identity.dropTargets.has(target);
    }),
  );
  for (const node of childrenOf(devices)) {
    const tag = tagOf(node);
    if (tag !== undefined && chardevTags.has(tag) && node[':@']?.type === 'file')
      for (const c of childrenOf(node)) {
        const attrs = c[':@'];
        if (tagOf(c) === 'source' && attrs?.path !== undefined)
          c[':@'] = { ...attrs, path: ownLog(attrs.path, identity) };
      }
    if (tag !== 'interface') continue;
    const mac = identity.macs[macIndex++];
    if (mac === undefined) throw new Error('replicaXml: fewer MACs than interfaces');
    const rest = childrenOf(node).filter((c) => tagOf(c) !== 'mac');
    setChildren(node, [{ mac: [], ':@': { address: mac } }, ...rest]);
  }
  setChildren(
    root,
    childrenOf(root).map((node) => {
      const tag = tagOf(node);
      if (tag === 'name') return { name: [{ '#text': identity.name }] };
      if (tag === 'uuid') return { uuid: [{ '#text': identity.uuid }] };
      return node;
    }),
  );
  return builder.build(doc);
}
