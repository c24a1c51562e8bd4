import { describe, expect, it } from 'vitest';
import { hostReaches } from '../../src/host/passthrough.js';

const domain = (devices: string, extra = '') =>
  `<domain type='kvm' xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'><name>web</name><devices>${devices}</devices>${extra}</domain>`;

describe('hostReaches', () => {
  it('names every disk that was not restored, whatever its type, and nothing for restored or empty ones', () => {
    const { reaches } = hostReaches(
      domain(
        `<disk type='file' device='disk'><source file='/vm/a.qcow2'/><target dev='vda'/></disk>
<disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vdb'/></disk>
<disk type='volume' device='disk'><source pool='p' volume='v'/><target dev='vdc'/></disk>
<disk type='file' device='disk'><driver type='raw'/><source file='/srv/other.raw'/><target dev='vdd'/></disk>
<disk type='file' device='cdrom'><target dev='hdc'/></disk>`,
      ),
      new Set(['vda']),
      '/vm',
    );
    expect(reaches.map((r) => [r.keep, r.element.split(':')[0]])).toEqual([
      ['host-disk', 'disk vdb'],
      ['host-disk', 'disk vdc'],
      ['host-disk', 'disk vdd'],
    ]);
  });

  it('finds the qemu namespace under any prefix or a default xmlns, hostdev interfaces and the emulator', () => {
    const { reaches, emulator } = hostReaches(
      domain(
        `<emulator>/usr/bin/qemu-system-x86_64</emulator><interface type='hostdev'><source><address type='pci' bus='0x03'/></source></interface>`,
        `<q:commandline><q:arg value='-x'/></q:commandline><override xmlns='http://libvirt.org/schemas/domain/qemu/1.0'/>`,
      ),
      new Set(),
      '/vm',
    );
    expect(emulator).toBe('/usr/bin/qemu-system-x86_64');
    expect(reaches.map((r) => r.keep)).toEqual(['qemu-commandline', 'qemu-commandline', 'hostdev']);
    expect(reaches[0]?.element).toBe('<q:commandline>');
  });

  it('names character devices writing to files outside the target folder', () => {
    const { reaches } = hostReaches(
      domain(`<serial type='file'><source path='/vm/console.log'/></serial>
<console type='file'><source path='/etc/shadow'/></console>
<channel type='unix'><source mode='bind' path='/run/x.sock'/><log file='/root/.bashrc'/></channel>`),
      new Set(),
      '/vm',
    );
    expect(reaches).toEqual([
      { keep: 'host-file', element: "source path='/etc/shadow' of a character device" },
      { keep: 'host-file', element: "log file='/root/.bashrc' of a character device" },
    ]);
  });
});
