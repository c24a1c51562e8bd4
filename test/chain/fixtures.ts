import type { Disk, DomainState, Layer } from '../../src/chain/model.js';

export function layer(path: string, kind: Layer['kind'] = 'base'): Layer {
  return { path, format: 'qcow2', virtualSize: 1 << 26, actualSize: 1 << 20, kind };
}

/** A raw block device as a chain's base (an LVM logical volume). */
export function deviceLayer(path: string): Layer {
  return { ...layer(path), format: 'raw', device: true };
}

export function qcow2Disk(target: string, chain: readonly Layer[]): Disk {
  return {
    target,
    device: 'disk',
    sourceType: 'file',
    driverType: 'qcow2',
    source: chain[0]?.path,
    readonly: false,
    chain,
  };
}

export function domainState(overrides: Partial<DomainState> & Pick<DomainState, 'disks'>): DomainState {
  return {
    name: 'web',
    uuid: '00000000-0000-0000-0000-000000000001',
    persistent: true,
    managedSave: false,
    runState: 'running',
    persistentSources: new Map(overrides.disks.map((d) => [d.target, d.source])),
    ...overrides,
  };
}
