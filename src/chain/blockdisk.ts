import path from 'node:path';
import { UserError } from '../errors.js';
import type { Disk, DomainState, Layer } from './model.js';
import { baseLayer } from './model.js';

/**
 * Why a disk's chain cannot take part because of a block device in it, or undefined. A device can
 * only be a chain's base: the layers above the base are removed once merged, and a device is never
 * removed.
 */
export function deviceAboveBase(disk: Disk): string | undefined {
  const device = disk.chain.slice(0, -1).find((layer) => layer.device === true);
  return device === undefined
    ? undefined
    : `has the block device ${device.path} above its base; only a chain's base may be a device. Merge the chain (qemu-img commit) or leave it out with --exclude ${disk.target}.`;
}

/**
 * The folder a new layer over `top` goes to: beside it, or `overlayDir` when the top is a block
 * device (a device's folder, /dev/VG, holds no files).
 */
export function overlayFolder(
  domain: string,
  disk: Disk,
  top: Layer,
  overlayDir: string | undefined,
): string {
  if (top.device !== true) return path.dirname(top.path);
  if (overlayDir !== undefined) return overlayDir;
  throw new UserError(
    `disk ${disk.target} of domain '${domain}' is the block device ${top.path}: its overlays need a folder of ` +
      `their own. Nothing was changed. Set overlay-dir in the config file (globally, or under domains.${domain}) or ` +
      `give --overlay-dir DIR, or leave the disk out with --exclude ${disk.target}.`,
  );
}

/** Disks whose base is a block device. */
export function deviceDisks(disks: readonly Disk[]): Disk[] {
  return disks.filter((disk) => baseLayer(disk)?.device === true);
}

/** A verb that cannot handle block-device disks yet stops before changing anything. */
export function refuseDeviceDisks(
  state: DomainState,
  disks: readonly Disk[],
  verb: string,
  /** What the user can do instead, for this disk. */
  next: (disk: Disk) => string,
): void {
  const found = deviceDisks(disks);
  if (found.length === 0) return;
  throw new UserError(
    found
      .map(
        (disk) =>
          `disk ${disk.target} of domain '${state.name}' is backed by the block device ${baseLayer(disk)?.path ?? ''}: ` +
          `${verb} cannot take block-device disks yet. Nothing was changed. ${next(disk)}`,
      )
      .join('\n'),
  );
}
