import type { FoundFilesystem, ImageRegion } from '../host/blockdevices.js';

/**
 * Read-only mount options per filesystem. A crash-consistent snapshot's filesystem needs its journal
 * (ext4) or log (xfs, btrfs) replayed to show what was written last; the replay writes only to the
 * scratch overlay above the chain, never to a layer.
 */
const readOnlyOptions: Readonly<Record<string, string>> = {
  ext2: 'ro',
  ext3: 'ro',
  ext4: 'ro',
  xfs: 'ro',
  btrfs: 'ro',
  vfat: 'ro',
  exfat: 'ro',
  ntfs3: 'ro',
  iso9660: 'ro',
};
const hostSafety = 'nodev,nosuid,noexec';

/** Why a filesystem type is not mounted, for the ones a user will ask about. */
const unmountable: Readonly<Record<string, string>> = {
  crypto_LUKS: 'encrypted (LUKS): open it by hand with cryptsetup --readonly on the loop device',
  LVM2_member: 'an LVM physical volume: its logical volumes are not activated (that writes LVM metadata)',
  swap: 'swap space, no files',
};

/** One filesystem of the disk as mount plans it: where it goes, or why it does not. */
export interface PlannedFilesystem {
  readonly region: ImageRegion;
  readonly found: FoundFilesystem;
  /** The folder under the mount point: partition number and label (`1-boot`), `disk` for a bare filesystem. */
  readonly name: string;
  readonly type?: string;
  readonly options?: string;
  readonly skipped?: string;
}

/** A label as one safe folder name: no slashes, no dots at the start, no control characters. */
function labelPart(label: string | undefined): string {
  const clean = (label ?? '')
    .replace(/[^\w.+-]/g, '_')
    .replace(/^\.+/, '')
    .slice(0, 64);
  return clean === '' ? '' : `-${clean}`;
}

/** The folder of each region, and its mount type and options, or why it is left out. */
export function planFilesystems(
  found: readonly { readonly region: ImageRegion; readonly found: FoundFilesystem }[],
): PlannedFilesystem[] {
  return found.map(({ region, found: fs }) => {
    const name = `${region.number === undefined ? 'disk' : String(region.number)}${labelPart(fs.label)}`;
    const type = fs.type;
    if (type === undefined) return { region, found: fs, name, skipped: 'no filesystem blkid recognises' };
    const options = readOnlyOptions[type];
    if (options === undefined)
      return {
        region,
        found: fs,
        name,
        type,
        skipped: unmountable[type] ?? `${type} is not a filesystem mount reads`,
      };
    return { region, found: fs, name, type, options: `${options},${hostSafety}` };
  });
}

/** What was found, one line each, for the message when nothing can be mounted. */
export function describeFilesystems(planned: readonly PlannedFilesystem[]): string[] {
  return planned.map(
    (p) =>
      `${p.name}: ${p.type ?? 'unknown'}${p.found.label === undefined ? '' : ` labelled '${p.found.label}'`}` +
      (p.skipped === undefined ? '' : ` — ${p.skipped}`),
  );
}
