import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDomainXml } from '../../src/host/domainxml.js';
import { interfaceCount, replicaXml } from '../../src/host/replicaxml.js';

const source = readFileSync(new URL('../fixtures/domain-running.xml', import.meta.url), 'utf8').replace(
  '</devices>',
  `<interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/></interface>
   <serial type='file'><source path='/vms/web/console.log'/><target port='0'/></serial>
   </devices>`,
);

describe('the replica definition', () => {
  const xml = replicaXml(source, {
    name: 'web-replica',
    uuid: '00000000-0000-0000-0000-00000000beef',
    macs: ['52:54:00:01:02:03'],
    sources: new Map([['vda', '/replicas/disk.1.qcow2']]),
    dropTargets: new Set(['vdb', 'vdc']),
    logDir: '/replicas',
  });

  it('has its own name, UUID and MACs', () => {
    const parsed = parseDomainXml(xml);
    expect(parsed.name).toBe('web-replica');
    expect(parsed.uuid).toBe('00000000-0000-0000-0000-00000000beef');
    expect(xml).toContain('address="52:54:00:01:02:03"');
    expect(xml).not.toContain('52:54:00:aa:bb:cc');
    expect(interfaceCount(source)).toBe(1);
  });

  it('runs from its files in DIR, without backingStore, and leaves out disks that do not take part', () => {
    const disks = parseDomainXml(xml).disks;
    expect(disks.map((d) => [d.target, d.source])).toEqual([
      ['vda', '/replicas/disk.1.qcow2'],
      ['hdc', undefined],
    ]);
    expect(xml).not.toContain('backingStore');
  });

  it("writes its console log into DIR, not into the source domain's", () => {
    expect(xml).toContain('path="/replicas/web-replica-console.log"');
    expect(xml).not.toContain('/vms/web/console.log');
  });
});
