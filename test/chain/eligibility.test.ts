import { describe, expect, it } from 'vitest';
import { NoQcow2DiskError, selectDisks } from '../../src/chain/eligibility.js';
import { deviceLayer, domainState, layer, qcow2Disk } from './fixtures.js';

const vda = qcow2Disk('vda', [layer('/vms/web/disk.1.qcow2')]);
const raw = { ...qcow2Disk('vdb', []), driverType: 'raw', source: '/vms/web/scratch.img' };
const vmdk = { ...qcow2Disk('vdd', []), driverType: 'vmdk', source: '/vms/web/old.vmdk' };
const net = { ...qcow2Disk('vdc', []), sourceType: 'network', source: 'export' };
const cdrom = { ...qcow2Disk('hdc', []), device: 'cdrom' as const, driverType: 'raw', source: undefined };

describe('selectDisks', () => {
  it('takes qcow2 and raw file disks and ignores cdroms without a word', () => {
    expect(selectDisks(domainState({ disks: [vda, raw, cdrom] })).included).toEqual([vda, raw]);
  });

  it('refuses a disk of another format or a network disk, naming it and the way out', () => {
    const run = () => selectDisks(domainState({ disks: [vda, vmdk, net] }));
    expect(run).toThrow(
      /disk vdd of domain 'web' \(\/vms\/web\/old.vmdk\) is vmdk, neither qcow2 nor raw.*--exclude vdd/,
    );
    expect(run).toThrow(
      /disk vdc .* is a network disk, neither a file nor a block device\. Its data lives on a storage server.*--exclude vdc/,
    );
  });

  it('takes a block device disk; tells a pool volume what to do about it', () => {
    const block = {
      ...qcow2Disk('vde', [deviceLayer('/dev/vg0/data')]),
      sourceType: 'block',
      driverType: 'raw',
      source: '/dev/vg0/data',
    };
    const volume = { ...qcow2Disk('vdf', []), sourceType: 'volume', source: 'data.img' };
    expect(selectDisks(domainState({ disks: [vda, block] })).included).toEqual([vda, block]);
    expect(() => selectDisks(domainState({ disks: [vda, volume] }))).toThrow(
      /is a volume disk, neither a file nor a block device\. Point the disk at the volume's file \(virsh vol-path --pool POOL data\.img, then virsh edit\) or leave it out with --exclude vdf/,
    );
  });

  it('refuses a chain with a block device above its base', () => {
    const odd = qcow2Disk('vdg', [
      layer('/vms/web/top.qcow2', 'incr'),
      { ...layer('/dev/vg0/mid', 'foreign'), device: true },
      layer('/vms/web/base.qcow2'),
    ]);
    expect(() => selectDisks(domainState({ disks: [odd] }))).toThrow(
      /disk vdg .* has the block device \/dev\/vg0\/mid above its base; only a chain's base may be a device/,
    );
  });

  it('leaves out what the user excluded, by target or by file', () => {
    const byTarget = selectDisks(domainState({ disks: [vda, vmdk] }), ['vdd']);
    expect(byTarget).toEqual({ included: [vda], excluded: [vmdk] });
    expect(selectDisks(domainState({ disks: [vda, raw] }), ['/vms/web/scratch.img']).excluded).toEqual([raw]);
  });

  it('names an excluded disk the domain does not have', () => {
    expect(() => selectDisks(domainState({ disks: [vda] }), ['vdz'])).toThrow(
      /--exclude vdz: domain 'web' has no such disk \(it has vda\)/,
    );
  });

  it('has a distinct error for a domain with nothing to back up', () => {
    expect(() => selectDisks(domainState({ disks: [cdrom] }))).toThrow(NoQcow2DiskError);
  });
});
