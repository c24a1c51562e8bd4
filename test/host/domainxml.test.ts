import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  parseDomainXml,
  parseSnapshotXml,
  relocateCharDeviceFiles,
  renameDomainXml,
  setDiskSources,
  snapshotXml,
} from '../../src/host/domainxml.js';

const running = readFileSync(new URL('../fixtures/domain-running.xml', import.meta.url), 'utf8');

describe('parseDomainXml', () => {
  it('reads name, uuid and every disk with its kind of source', () => {
    const parsed = parseDomainXml(running);
    expect(parsed.name).toBe('web "prod" $(x)');
    expect(parsed.uuid).toBe('1b0c5c2e-5a55-4d43-9a4c-6bde0f7f3f10');
    expect(parsed.disks).toEqual([
      {
        target: 'vda',
        device: 'disk',
        sourceType: 'file',
        driverType: 'qcow2',
        source: "/vms/web 'a'/disk.1.incr-20261126-101010",
        readonly: false,
      },
      {
        target: 'vdb',
        device: 'disk',
        sourceType: 'file',
        driverType: 'raw',
        source: '/vms/web/scratch.img',
        readonly: false,
      },
      {
        target: 'hdc',
        device: 'cdrom',
        sourceType: 'file',
        driverType: 'raw',
        source: undefined,
        readonly: true,
      },
      {
        target: 'vdc',
        device: 'disk',
        sourceType: 'network',
        driverType: 'raw',
        source: 'export',
        readonly: false,
      },
    ]);
  });

  it('rejects text that is not a domain', () => {
    expect(() => parseDomainXml('<network/>')).toThrow(/no <domain>/);
  });
});

describe('setDiskSources', () => {
  it('points a disk at a new top, drops its backingStore and keeps everything else', () => {
    const next = "/vms/web 'a'/disk.1.incr-20261126-111111 & <b>";
    const xml = setDiskSources(running, new Map([['vda', next]]));
    const parsed = parseDomainXml(xml);
    expect(parsed.disks[0]?.source).toBe(next);
    expect(parsed.disks[1]?.source).toBe('/vms/web/scratch.img');
    expect(parsed.name).toBe('web "prod" $(x)');
    expect(xml).not.toContain('<backingStore');
    expect(xml).toContain("machine='pc-i440fx-7.2'".replaceAll("'", '"'));
  });

  it('sets the driver type: qcow2 for a new top, the given format for a raw base', () => {
    const xml = setDiskSources(
      running,
      new Map([
        ['vda', '/vms/web/disk.1.incr-20261126-111111'],
        ['vdb', '/vms/web/scratch.img'],
      ]),
      new Map([['vdb', 'raw']]),
    );
    expect(
      parseDomainXml(xml)
        .disks.map((d) => d.driverType)
        .slice(0, 2),
    ).toEqual(['qcow2', 'raw']);
  });

  it('turns a file disk into a block disk and back: disk type and source attribute follow the device', () => {
    const onDevice = setDiskSources(
      running,
      new Map([['vdb', '/dev/vg0/data']]),
      new Map([['vdb', 'raw']]),
      new Set(['vdb']),
    );
    expect(parseDomainXml(onDevice).disks[1]).toMatchObject({ sourceType: 'block', source: '/dev/vg0/data' });
    expect(onDevice).not.toContain('file="/vms/web/scratch.img"');
    const overlay = setDiskSources(onDevice, new Map([['vdb', '/srv/overlays/data.incr-20261126-111111']]));
    expect(parseDomainXml(overlay).disks[1]).toMatchObject({
      sourceType: 'file',
      driverType: 'qcow2',
      source: '/srv/overlays/data.incr-20261126-111111',
    });
    expect(overlay).not.toContain('dev="/dev/vg0/data"');
  });

  it('refuses a target the domain does not have', () => {
    expect(() => setDiskSources(running, new Map([['sdz', '/x']]))).toThrow(/no disk sdz/);
  });
});

describe('snapshotXml', () => {
  it('names every disk, external or left out, and escapes paths', () => {
    const xml = snapshotXml('s1', [
      { target: 'vda', file: '/a "b"/c&d' },
      { target: 'hdc', file: undefined },
    ]);
    expect(xml).toContain('<name>s1</name>');
    expect(xml).toContain('name="hdc" snapshot="no"');
    expect(xml).toContain('file="/a &quot;b&quot;/c&amp;d"');
  });

  it('adds an external memory file when asked', () => {
    expect(snapshotXml('s', [{ target: 'vda', file: '/x' }], '/m')).toContain(
      '<memory snapshot="external" file="/m"',
    );
  });
});

describe('parseSnapshotXml', () => {
  const metadata = `<domainsnapshot><name>s1</name>
  <disks>
    <disk name='vda' snapshot='external' type='file'><driver type='qcow2'/><source file='/vms/web/disk.s1'/></disk>
    <disk name='vdb' snapshot='no'/>
  </disks>
  <domain type='qemu'><name>web</name><uuid>00000000-0000-0000-0000-000000000001</uuid><devices>
    <disk type='file' device='disk'><source file='/vms/link/disk.1.qcow2'/><target dev='vda'/></disk>
  </devices></domain>
  <inactiveDomain type='qemu'><name>web</name><devices>
    <disk type='file' device='disk'><source file='/vms/web/disk.1.qcow2'/><target dev='vda'/></disk>
  </devices></inactiveDomain>
</domainsnapshot>`;

  it("reads the snapshot's overlays and the disks of both definitions it keeps", () => {
    const parsed = parseSnapshotXml(metadata, "snapshot 's1'");
    expect(parsed.overlays).toEqual(['/vms/web/disk.s1']);
    expect(parsed.domains.flatMap((d) => d.disks.map((disk) => disk.source))).toEqual([
      '/vms/link/disk.1.qcow2',
      '/vms/web/disk.1.qcow2',
    ]);
  });

  it('refuses a document that is not snapshot metadata, naming it', () => {
    expect(() => parseSnapshotXml('<domain/>', "snapshot 's1' of domain 'web'")).toThrow(
      /snapshot 's1' of domain 'web' has no <domainsnapshot> element/,
    );
  });
});

describe('renameDomainXml and relocateCharDeviceFiles (restore --as)', () => {
  it('gives the copy a new name, no UUID or MAC, and its own console log', () => {
    const xml = `<domain type='kvm'><name>web</name><uuid>1234</uuid><devices>
<interface type='network'><mac address='52:54:00:11:22:33'/><source network='default'/></interface>
<serial type='file'><source path='/vm/web/console.log'/></serial>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/vm/web/a.qcow2'/><target dev='vda'/></disk>
</devices></domain>`;
    const out = relocateCharDeviceFiles(renameDomainXml(xml, 'web-copy'), (f) =>
      f.replace('/vm/web/', '/vm/copy/'),
    );
    expect(parseDomainXml(out).name).toBe('web-copy');
    expect(out).not.toContain('<uuid>');
    expect(out).not.toContain('52:54:00:11:22:33');
    expect(out).toContain('source network="default"');
    expect(out).toContain('/vm/copy/console.log');
    expect(parseDomainXml(out).disks[0]?.source).toBe('/vm/web/a.qcow2');
  });
});
