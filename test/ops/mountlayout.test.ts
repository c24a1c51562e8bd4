import { describe, expect, it } from 'vitest';
import { describeFilesystems, planFilesystems } from '../../src/ops/mountlayout.js';

const region = (number: number | undefined) => ({
  ...(number === undefined ? {} : { number }),
  offset: 1048576,
  size: 20971520,
});

describe('planFilesystems', () => {
  it('names folders by partition number and label, and mounts read-only without host devices or programs', () => {
    const planned = planFilesystems([
      { region: region(1), found: { type: 'ext4', label: 'boot' } },
      { region: region(2), found: { type: 'xfs' } },
    ]);
    expect(planned.map((p) => [p.name, p.options])).toEqual([
      ['1-boot', 'ro,nodev,nosuid,noexec'],
      ['2', 'ro,nodev,nosuid,noexec'],
    ]);
  });

  it('names a disk without a partition table "disk"', () => {
    expect(planFilesystems([{ region: region(undefined), found: { type: 'ext4' } }])[0]?.name).toBe('disk');
  });

  it('makes a hostile label one harmless folder name', () => {
    const [planned] = planFilesystems([{ region: region(3), found: { type: 'vfat', label: '../../etc x' } }]);
    expect(planned?.name).toBe('3-_.._etc_x');
  });

  it('leaves LUKS, LVM, swap and unknown regions unmounted, saying why', () => {
    const planned = planFilesystems([
      { region: region(1), found: { type: 'crypto_LUKS' } },
      { region: region(2), found: { type: 'LVM2_member' } },
      { region: region(3), found: { type: 'swap' } },
      { region: region(4), found: {} },
      { region: region(5), found: { type: 'zfs_member' } },
    ]);
    expect(planned.every((p) => p.options === undefined)).toBe(true);
    expect(describeFilesystems(planned)).toEqual([
      '1: crypto_LUKS — encrypted (LUKS): open it by hand with cryptsetup --readonly on the loop device',
      '2: LVM2_member — an LVM physical volume: its logical volumes are not activated (that writes LVM metadata)',
      '3: swap — swap space, no files',
      '4: unknown — no filesystem blkid recognises',
      '5: zfs_member — zfs_member is not a filesystem mount reads',
    ]);
  });
});
