import { describe, expect, it } from 'vitest';
import { parseDomainXml, relocateCharDeviceFiles, renameDomainXml } from '../../src/host/domainxml.js';
import { parseFrom } from '../../src/ops/restore.js';

describe('restore --from', () => {
  it('reads restic, restic:ID and folders', () => {
    expect(parseFrom('restic')).toEqual({ kind: 'restic' });
    expect(parseFrom('restic:latest')).toEqual({ kind: 'restic' });
    expect(parseFrom('restic:1a2b3c4d')).toEqual({ kind: 'restic', snapshot: '1a2b3c4d' });
    expect(parseFrom('/srv/vm')).toEqual({ kind: 'dir', dir: '/srv/vm' });
  });
});

describe('restore --as', () => {
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
