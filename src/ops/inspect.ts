import { existsSync } from 'node:fs';
import { selectDisks } from '../chain/eligibility.js';
import type { Layer } from '../chain/model.js';
import { frozenLayers } from '../chain/model.js';
import { configDumps } from '../chain/plan.js';
import type { DomainDefinitions } from '../host/virsh.js';
import type { OpsContext } from './context.js';
import { domainFolder, readDomainState, readDomainStateWithDefinitions } from './state.js';
import { listedVmFiles } from './vmfiles.js';

export interface ChainReport {
  readonly domain: string;
  readonly runState: string;
  readonly disks: readonly {
    readonly target: string;
    /** Top (active) first. */
    readonly layers: readonly (Layer & { readonly active: boolean })[];
  }[];
}

/** `backup showchain`: every taking-part disk's chain, top to base. */
export async function showChain(
  ctx: OpsContext,
  domain: string,
  exclude: readonly string[],
  prefetched?: DomainDefinitions,
): Promise<ChainReport> {
  const state = await readDomainState(ctx.host, domain, { prefetched });
  const { included } = selectDisks(state, exclude);
  return {
    domain: state.name,
    runState: state.runState,
    disks: included.map((disk) => ({
      target: disk.target,
      layers: disk.chain.map((layer, i) => ({ ...layer, active: i === 0 })),
    })),
  };
}

export interface FilesReport {
  readonly domain: string;
  /** Frozen layers (never the active one), the config dumps that exist, then the VM's other files. */
  readonly files: readonly string[];
}

/** `files`: exactly what a backup program must read for this domain. */
export async function backupFiles(
  ctx: OpsContext,
  domain: string,
  exclude: readonly string[],
  prefetched?: DomainDefinitions,
): Promise<FilesReport> {
  const { state, definitions } = await readDomainStateWithDefinitions(ctx.host, domain, undefined, {
    prefetched,
  });
  const { included } = selectDisks(state, exclude);
  const layers = included.flatMap((disk) => frozenLayers(disk).map((l) => l.path));
  const folder = domainFolder(state);
  const dumps = folder
    ? configDumps(folder, state.name)
        .map((d) => d.file)
        .filter((f) => existsSync(f))
    : [];
  const vmFiles = listedVmFiles(definitions.live, folder, state.name);
  return { domain: state.name, files: [...new Set([...layers, ...dumps, ...vmFiles])] };
}
