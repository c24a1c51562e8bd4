/** A test domain's devices; the XML is what libvirt gets (TCG: /dev/kvm hangs guests here). */
export interface DomainSpec {
  readonly name: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly cmdline: string;
  readonly consoleLog: string;
  readonly disks: readonly {
    readonly path: string;
    readonly format: 'qcow2' | 'raw';
    readonly target: string;
    /** A block device (`<disk type='block'>`), not a file. */
    readonly block?: boolean;
  }[];
  /** A cdrom with this file as its medium, or null for an empty drive. */
  readonly cdrom?: string | null;
  /** UEFI firmware: OVMF's code read-only, this variable store read-write. */
  readonly uefi?: { readonly code: string; readonly vars: string };
  /** An emulated TPM 2.0 (swtpm), its state in libvirt's folder for the domain's UUID. */
  readonly tpm?: boolean;
}

export function domainXml(spec: DomainSpec): string {
  const disks = spec.disks.map(
    (disk) => `    <disk type='${disk.block === true ? 'block' : 'file'}' device='disk'>
      <driver name='qemu' type='${disk.format}'/>
      <source ${disk.block === true ? 'dev' : 'file'}='${escapeXml(disk.path)}'/>
      <target dev='${disk.target}' bus='virtio'/>
    </disk>`,
  );
  if (spec.cdrom !== undefined) {
    disks.push(`    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>${spec.cdrom === null ? '' : `\n      <source file='${escapeXml(spec.cdrom)}'/>`}
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>`);
  }
  return `<domain type='qemu'>
  <name>${escapeXml(spec.name)}</name>
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>${
      spec.uefi === undefined
        ? ''
        : `
    <loader readonly='yes' type='pflash'>${escapeXml(spec.uefi.code)}</loader>
    <nvram>${escapeXml(spec.uefi.vars)}</nvram>`
    }
    <kernel>${escapeXml(spec.kernel)}</kernel>
    <initrd>${escapeXml(spec.initrd)}</initrd>
    <cmdline>${escapeXml(spec.cmdline)}</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
${disks.join('\n')}
    <serial type='file'>
      <source path='${escapeXml(spec.consoleLog)}' append='on'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='${escapeXml(spec.consoleLog)}' append='on'/>
      <target type='serial' port='0'/>
    </console>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <memballoon model='none'/>${
      spec.tpm === true
        ? `
    <tpm model='tpm-tis'><backend type='emulator' version='2.0'/></tpm>`
        : ''
    }
  </devices>
</domain>
`;
}

function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll("'", '&apos;')
    .replaceAll('"', '&quot;');
}
