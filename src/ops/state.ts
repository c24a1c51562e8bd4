import { readdirSync } from 'node:fs';
import path from 'node:path';
import { isBlockDevice } from '../host/fileid.js';
import { parseLayerName } from '../chain/layername.js';
import type { Disk, DomainState, Layer, XmlFlavour } from '../chain/model.js';
import { isIgnoredDevice } from '../chain/model.js';
import { unsupportedReason } from '../chain/eligibility.js';
import { UserError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { XmlDisk } from '../host/domainxml.js';
import { parseDomainXml } from '../host/domainxml.js';
import type { ImageInfo } from '../host/qemuimg.js';
import type { DomainDefinitions, DomainInfo } from '../host/virsh.js';
import { ProcessError } from '../host/runner.js';
import { existingOverlayDir } from '../host/overlaydir.js';

function toLayer(info: ImageInfo, isBase: boolean, device: boolean): Layer {
  const parsed = parseLayerName(info.filename);
  return {
    ...(device ? { device: true as const } : {}),
    path: info.filename,
    format: info.format,
    virtualSize: info.virtualSize,
    actualSize: info.actualSize,
    kind: isBase ? 'base' : (parsed?.kind ?? 'foreign'),
    ...(parsed && !isBase ? { time: parsed.time } : {}),
  };
}

async function diskWithChain(
  host: Host,
  domain: string,
  disk: XmlDisk,
  /** The chain of disk.source, when its read was started already. */
  started?: Promise<ImageInfo[]>,
): Promise<Disk> {
  if (isIgnoredDevice(disk) || unsupportedReason(disk) !== undefined || disk.source === undefined)
    return { ...disk, chain: [] };
  let infos: ImageInfo[];
  try {
    // A chain read ahead probed its top: only a qcow2 top may be taken from it, a raw one is reread as raw.
    const format = disk.driverType ?? 'qcow2';
    infos = await (format === 'qcow2' && started ? started : host.qemuImg.chain(disk.source, format));
  } catch (error) {
    if (error instanceof ProcessError)
      throw new UserError(
        `disk ${disk.target} of domain '${domain}': cannot read its chain from ${disk.source}: ` +
          `${error.stderr.trim() || error.message}. Check that every file of the chain exists and is readable ` +
          `(qemu-img info --backing-chain -U '${disk.source}').`,
        { cause: error },
      );
    throw error;
  }
  return {
    ...disk,
    chain: infos.map((info, i) => toLayer(info, i === infos.length - 1, isBlockDevice(info.filename))),
  };
}

/** The definitions a state was read from, so a verb can reuse them instead of reading them again. */
export interface Definitions {
  readonly live: string;
  /** Present for a persistent domain (the same text as `live` when it is shut off). */
  readonly inactive?: string;
  /** `dumpxml --migratable`, when asked for (a verb that writes the config dumps). */
  readonly migratable?: string;
}

/**
 * Reads everything the planner needs about one domain: its run state (skipped when the caller
 * already knows it), one definition read (two when a running domain is persistent, the only case
 * where they can differ) and one chain query per disk.
 */
export async function readDomainStateWithDefinitions(
  host: Host,
  domain: string,
  known?: DomainInfo,
  options: StateOptions = {},
): Promise<{ state: DomainState; definitions: Definitions }> {
  const read = options.prefetched;
  // Chains whose top is known already are read while the definitions are.
  const started = new Map([...(options.expectedTops ?? [])].map((top) => [top, host.qemuImg.chain(top)]));
  for (const chain of started.values()) chain.catch(() => undefined);
  const flavours: XmlFlavour[] = [
    'live',
    ...(options.persistent !== false ? (['inactive'] as const) : []),
    ...(options.migratable === true ? (['migratable'] as const) : []),
  ];
  // One virsh run for run state and definitions when the name allows it (else one run each).
  const plain = read
    ? undefined
    : await host.virsh.readPlain(domain, flavours, { info: known === undefined });
  const info = known ?? read?.info ?? plain?.info ?? (await host.virsh.info(domain));
  const running = info.runState !== 'shut off';
  const wantInactive = info.persistent && running && options.persistent !== false;
  const [live, inactive, migratable] = await Promise.all([
    read?.live ?? plain?.xml.get('live') ?? host.virsh.dumpXml(domain),
    wantInactive
      ? (read?.inactive ?? plain?.xml.get('inactive') ?? host.virsh.dumpXml(domain, 'inactive'))
      : undefined,
    options.migratable === true
      ? (plain?.xml.get('migratable') ?? host.virsh.dumpXml(domain, 'migratable'))
      : undefined,
  ]);
  const liveXml = parseDomainXml(live, `definition of domain '${domain}'`);
  // A batched read asked by UUID: a definition naming another domain means it changed meanwhile.
  if (read !== undefined && (liveXml.name !== info.name || liveXml.uuid !== info.uuid))
    return readDomainStateWithDefinitions(host, domain, known, { ...options, prefetched: undefined });
  const persistentXml =
    inactive !== undefined
      ? parseDomainXml(inactive, `persistent definition of '${domain}'`)
      : info.persistent && options.persistent !== false
        ? liveXml
        : undefined;
  const disks = await Promise.all(
    liveXml.disks.map((d) => diskWithChain(host, domain, d, started.get(d.source ?? ''))),
  );
  const state: DomainState = {
    name: info.name,
    uuid: info.uuid,
    persistent: info.persistent,
    runState: info.runState,
    managedSave: info.managedSave,
    disks,
    persistentSources: new Map((persistentXml?.disks ?? []).map((d) => [d.target, d.source])),
  };
  return {
    state,
    definitions: {
      live,
      ...(info.persistent ? { inactive: inactive ?? live } : {}),
      ...(migratable === undefined ? {} : { migratable }),
    },
  };
}

export interface StateOptions {
  /** false: skip the persistent definition (persistentSources stays empty), for readers that only report. */
  readonly persistent?: boolean;
  /** Files expected as disk tops (a plan's result): their chains are read beside the definitions. */
  readonly expectedTops?: Iterable<string>;
  /** Also read the migratable definition, beside the others (for the config dumps). */
  readonly migratable?: boolean;
  /** Run state and definitions already read (a batched read of `all`): no virsh run is needed. */
  readonly prefetched?: DomainDefinitions | undefined;
}

/** Reads everything the planner needs about one domain: definition(s) and one chain query per disk. */
export async function readDomainState(
  host: Host,
  domain: string,
  options: StateOptions = {},
): Promise<DomainState> {
  return (await readDomainStateWithDefinitions(host, domain, undefined, options)).state;
}

/** Folder of the domain's first taking-part disk: where config dumps live (DESIGN §2). */
export function domainFolder(state: DomainState): string | undefined {
  const top = state.disks.find((d) => d.chain.length > 0)?.chain[0];
  return top ? path.dirname(top.path) : undefined;
}

/** Every file in the folders of a domain's chains: names a new layer must not take. */
export function takenNames(state: DomainState, overlayDir?: string): Set<string> {
  const folders = new Set(
    state.disks.flatMap((d) => d.chain.filter((l) => l.device !== true).map((l) => path.dirname(l.path))),
  );
  if (overlayDir !== undefined && state.disks.some((d) => d.chain[0]?.device === true))
    folders.add(existingOverlayDir(state.name, overlayDir));
  return new Set(
    [...folders].flatMap((folder) => readdirSync(folder).map((name) => path.join(folder, name))),
  );
}
