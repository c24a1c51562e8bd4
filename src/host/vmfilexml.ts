import { UserError } from '../errors.js';
import type { Node } from './xmltree.js';
import { builder, child, childrenOf, parser, tagOf, textOf } from './xmltree.js';

/** The `<os>` elements naming the files of a direct-kernel boot. */
export const bootElements = ['kernel', 'initrd', 'dtb'] as const;
export type BootElement = (typeof bootElements)[number];

/** Where libvirt keeps an emulated TPM's state when the definition names no folder of its own. */
export const swtpmRoot = '/var/lib/libvirt/swtpm';

/** The files besides its disks that a definition makes part of the VM. */
export interface VmFilesXml {
  /** The UEFI variable store (`<os><nvram>`). */
  readonly nvram?: string;
  /** The state folder of an emulated TPM (`<tpm><backend type='emulator'>`). */
  readonly tpm?: string;
  readonly boot: readonly { readonly element: BootElement; readonly file: string }[];
}

function domainRoot(doc: Node[], what: string): Node {
  const root = doc.find((n) => tagOf(n) === 'domain');
  if (!root) throw new UserError(`${what} has no <domain> element`);
  return root;
}

function parse(xml: string, what: string): Node[] {
  try {
    return parser.parse(xml) as Node[];
  } catch (error) {
    throw new UserError(`cannot parse ${what}: ${(error as Error).message}`);
  }
}

/** `<nvram>PATH</nvram>` (libvirt ≤ 9) or `<nvram type='file'><source file='PATH'/></nvram>`. */
function nvramPath(nvram: Node | undefined): string | undefined {
  if (nvram === undefined) return undefined;
  const source = child(nvram, 'source')?.[':@']?.file;
  const text = textOf(nvram);
  return source ?? (text === '' ? undefined : text);
}

function tpmFolder(root: Node, uuid: string): string | undefined {
  const tpm = childrenOf(child(root, 'devices') ?? {}).find((n) => tagOf(n) === 'tpm');
  const backend = tpm === undefined ? undefined : child(tpm, 'backend');
  if (backend?.[':@']?.type !== 'emulator') return undefined;
  return child(backend, 'source')?.[':@']?.path ?? (uuid === '' ? undefined : `${swtpmRoot}/${uuid}`);
}

export function parseVmFiles(xml: string, what: string): VmFilesXml {
  const root = domainRoot(parse(xml, what), what);
  const os = child(root, 'os') ?? {};
  const nvram = nvramPath(child(os, 'nvram'));
  const tpm = tpmFolder(root, textOf(child(root, 'uuid')) ?? '');
  return {
    ...(nvram === undefined ? {} : { nvram }),
    ...(tpm === undefined ? {} : { tpm }),
    boot: bootElements.flatMap((element) => {
      const file = textOf(child(os, element));
      return file === undefined || file === '' ? [] : [{ element, file }];
    }),
  };
}

/** Where the restored VM's files are: each given one replaces what the definition named. */
export interface VmFilesPlacement {
  readonly nvram?: string;
  readonly boot: ReadonlyMap<BootElement, string>;
  /** The UUID to give the domain (its TPM state folder is named by it). */
  readonly uuid?: string;
  /** The TPM state was put into libvirt's folder for the UUID: a folder the dump named is dropped. */
  readonly tpm?: boolean;
}

/** The definition pointed at restored VM files. */
export function setVmFiles(xml: string, placement: VmFilesPlacement): string {
  const doc = parse(xml, 'domain XML');
  const root = domainRoot(doc, 'domain XML');
  const os = child(root, 'os');
  for (const [element, file] of placement.boot) {
    const node = os === undefined ? undefined : child(os, element);
    if (node) node[element] = [{ '#text': file }];
  }
  const nvram = os === undefined ? undefined : child(os, 'nvram');
  if (nvram && placement.nvram !== undefined) {
    const source = child(nvram, 'source');
    if (source) source[':@'] = { ...source[':@'], file: placement.nvram };
    else nvram.nvram = [{ '#text': placement.nvram }];
  }
  const tpm = childrenOf(child(root, 'devices') ?? {}).find((n) => tagOf(n) === 'tpm');
  const backend = tpm === undefined ? undefined : child(tpm, 'backend');
  if (placement.tpm === true && backend)
    backend.backend = childrenOf(backend).filter((c) => tagOf(c) !== 'source');
  if (placement.uuid !== undefined) {
    const uuid = child(root, 'uuid');
    if (uuid) uuid.uuid = [{ '#text': placement.uuid }];
    else
      root.domain = [
        ...childrenOf(root).slice(0, 1),
        { uuid: [{ '#text': placement.uuid }] },
        ...childrenOf(root).slice(1),
      ];
  }
  return builder.build(doc);
}
