import { createHash } from 'node:crypto';
import path from 'node:path';
import { UserError } from '../errors.js';
import { isBlockDevice } from '../host/fileid.js';
import type { Restic, ResticBackupSummary } from '../host/restic.js';
import { ResticError } from '../host/restic.js';
import type { BackupResult } from './backup.js';
import { deviceTag } from '../naming.js';

/**
 * Block-device bases reach restic as snapshots of their own: restic 0.14 reads a device only
 * through `--stdin`, a whole read each time, so a device is read only when the repository holds no
 * copy of its current content. Its content changes only under no overlay (a commit, or the domain
 * running from it after `disable`); once an overlay is put over it, it stays frozen until that
 * overlay is merged away. So a copy is current exactly when it was made under the same overlay:
 * each copy is tagged with the name of the layer directly above the device (hashed: a tag cannot
 * hold a comma), and a new name — after full, disable + enable, or diff — means a new copy.
 */

/** The tag every device copy carries. It is not a domain's tag, so `run`'s parent, retention and restore never see it. */

export interface DeviceCopy {
  readonly target: string;
  readonly device: string;
  /** The file name of the copy in its snapshot (`/NAME`, for `restic dump`). */
  readonly name: string;
  /** The snapshot holding the current copy: the one just made, or the one found. */
  readonly snapshot: string;
  /** Whether this run read the device (no current copy was there). */
  readonly read: boolean;
  readonly summary?: ResticBackupSummary;
  /** How long the copy took (0 when the device was not read). */
  readonly ms: number;
}

/** The tag naming the layer directly above a device (hashed: a tag cannot hold a comma). */
export function overTag(layer: string): string {
  return `over:${createHash('sha256').update(path.basename(layer)).digest('hex').slice(0, 16)}`;
}

/** The file name of a device copy in its snapshot. */
export const copyName = (domain: string, target: string): string => `${domain}.${target}.raw`;

/** The devices among the files `files` lists: they are copied through `--stdin`, never listed to restic. */
export function deviceFiles(files: readonly string[]): Set<string> {
  return new Set(files.filter(isBlockDevice));
}

/** Copies each block-device base whose current content the repository does not hold yet. */
export async function copyDevices(
  restic: Restic,
  prepared: BackupResult,
  devices: ReadonlySet<string>,
  host: string,
): Promise<DeviceCopy[]> {
  const copies: DeviceCopy[] = [];
  for (const disk of prepared.disks) {
    const device = disk.chain.at(-1);
    const above = disk.chain.at(-2);
    if (device === undefined || above === undefined || !devices.has(device)) continue;
    const name = copyName(prepared.domain, disk.target);
    const tags = [deviceTag, `${prepared.domain}/${disk.target}`, overTag(above)];
    const found = (await restic.snapshots({ tags, host })).at(-1);
    if (found !== undefined) {
      copies.push({ target: disk.target, device, name, snapshot: found.shortId, read: false, ms: 0 });
      continue;
    }
    const started = Date.now();
    try {
      const summary = await restic.backupDevice(device, name, tags);
      const ms = Date.now() - started;
      copies.push({
        target: disk.target,
        device,
        name,
        snapshot: summary.snapshotId,
        read: true,
        summary,
        ms,
      });
    } catch (error) {
      if (error instanceof ResticError)
        throw new UserError(
          `domain '${prepared.domain}': disk ${disk.target}: ${error.message}\nThe overlays were backed up; ` +
            `the device ${device} was not. The domain keeps running; the next run reads the device again.`,
          { cause: error },
        );
      throw error;
    }
  }
  return copies;
}
