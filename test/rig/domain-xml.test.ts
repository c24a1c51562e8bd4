import { describe, expect, it } from 'vitest';
import { domainXml } from './domain-xml.js';

const spec = {
  name: `a <b> & 'c' "d" $(e)`,
  kernel: '/k',
  initrd: '/i',
  cmdline: 'console=ttyS0',
  consoleLog: `/dir 'x'/console.log`,
  disks: [{ path: '/dir/vda.qcow2', format: 'qcow2', target: 'vda' }],
} as const;

describe('domainXml', () => {
  it('escapes names and paths', () => {
    const xml = domainXml(spec);
    expect(xml).toContain('<name>a &lt;b&gt; &amp; &apos;c&apos; &quot;d&quot; $(e)</name>');
    expect(xml).toContain(`<source path='/dir &apos;x&apos;/console.log' append='on'/>`);
  });

  it('runs the guest under TCG with a guest-agent channel', () => {
    const xml = domainXml(spec);
    expect(xml).toMatch(/^<domain type='qemu'>/);
    expect(xml).toContain("<target type='virtio' name='org.qemu.guest_agent.0'/>");
  });

  it('adds an empty or file-backed cdrom only when asked', () => {
    expect(domainXml(spec)).not.toContain("device='cdrom'");
    expect(domainXml({ ...spec, cdrom: null })).toMatch(
      /device='cdrom'>\s*<driver name='qemu' type='raw'\/>\s*<target/,
    );
    expect(domainXml({ ...spec, cdrom: '/x.iso' })).toContain("<source file='/x.iso'/>");
  });
});
