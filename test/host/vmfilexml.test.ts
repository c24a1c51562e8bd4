import { describe, expect, it } from 'vitest';
import { parseVmFiles, setVmFiles } from '../../src/host/vmfilexml.js';
import { confSetting } from '../../src/host/swtpm.js';

const uefi = `<domain type='kvm'><name>web1</name><uuid>1B0C5C2E-5a55-4d43-9a4c-6bde0f7f3f10</uuid>
  <os><type arch='x86_64' machine='q35'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/web1_VARS.fd</nvram>
    <kernel>/boot/vmlinuz</kernel><initrd>/boot/initrd.img</initrd><cmdline>console=ttyS0</cmdline>
  </os>
  <devices><tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm></devices></domain>`;

describe('parseVmFiles', () => {
  it('reads the variable store, the TPM state folder (by UUID) and the direct-kernel files', () => {
    expect(parseVmFiles(uefi, 'web1')).toEqual({
      nvram: '/var/lib/libvirt/qemu/nvram/web1_VARS.fd',
      tpm: '/var/lib/libvirt/swtpm/1B0C5C2E-5a55-4d43-9a4c-6bde0f7f3f10',
      boot: [
        { element: 'kernel', file: '/boot/vmlinuz' },
        { element: 'initrd', file: '/boot/initrd.img' },
      ],
    });
  });

  it("reads a newer libvirt's <nvram><source file>, a TPM folder of its own, and nothing for a BIOS domain", () => {
    const xml = `<domain><name>a</name><uuid>u</uuid><os><nvram type='file'><source file='/vm/a.fd'/></nvram></os>
      <devices><tpm model='tpm-tis'><backend type='emulator'><source type='dir' path='/vm/tpm'/></backend></tpm></devices></domain>`;
    expect(parseVmFiles(xml, 'a')).toEqual({ nvram: '/vm/a.fd', tpm: '/vm/tpm', boot: [] });
    const passthrough = `<domain><name>b</name><uuid>u</uuid><os><type>hvm</type></os>
      <devices><tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm></devices></domain>`;
    expect(parseVmFiles(passthrough, 'b')).toEqual({ boot: [] });
  });
});

describe('setVmFiles', () => {
  it('points the definition at the restored files and gives it the UUID its TPM state is filed under', () => {
    const renamed = uefi.replace(/<uuid>[^<]*<\/uuid>/, '');
    const xml = setVmFiles(renamed, {
      nvram: '/to/new_VARS.fd',
      boot: new Map([['kernel', '/to/new.kernel']]),
      uuid: '0e4b2a52-0000-4000-8000-000000000001',
      tpm: true,
    });
    expect(parseVmFiles(xml, 'new')).toEqual({
      nvram: '/to/new_VARS.fd',
      tpm: '/var/lib/libvirt/swtpm/0e4b2a52-0000-4000-8000-000000000001',
      boot: [
        { element: 'kernel', file: '/to/new.kernel' },
        { element: 'initrd', file: '/boot/initrd.img' },
      ],
    });
    expect(xml).toContain('template="/usr/share/OVMF/OVMF_VARS_4M.fd"');
  });

  it('drops a TPM state folder the dump named once the state is in libvirt’s own folder', () => {
    const xml = `<domain><name>a</name><uuid>u</uuid><os><nvram type='file'><source file='/vm/a.fd'/></nvram></os>
      <devices><tpm model='tpm-tis'><backend type='emulator'><source type='dir' path='/etc'/></backend></tpm></devices></domain>`;
    const restored = setVmFiles(xml, { nvram: '/to/a_VARS.fd', boot: new Map(), tpm: true });
    expect(parseVmFiles(restored, 'a')).toEqual({
      nvram: '/to/a_VARS.fd',
      tpm: '/var/lib/libvirt/swtpm/u',
      boot: [],
    });
  });
});

describe('confSetting', () => {
  it('reads a set qemu.conf value, never a commented-out one', () => {
    expect(confSetting('#swtpm_user = "tss"\n', 'swtpm_user')).toBeUndefined();
    expect(confSetting('#x\n  swtpm_user = "swtpm"\n', 'swtpm_user')).toBe('swtpm');
  });
});
