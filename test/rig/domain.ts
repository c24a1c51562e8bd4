import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentCommand, guestExec, waitForAgent } from './agent.js';
import type { GuestExecResult } from './agent.js';
import { domainXml } from './domain-xml.js';
import { parseRecord } from './records.js';
import { guestDir, testRoot } from './rig-paths.js';
import { makeExt4Qcow2, makeExt4Raw, makeRawImage } from './test-disk.js';
import { domainState, tryVirsh, virsh } from './virsh.js';

export interface TestDomainOptions {
  /** Domain name; default `ubt-` and a random suffix. Any characters libvirt allows. */
  readonly name?: string;
  /** The folder under /var/tmp/unifi-backup-test; default the name. Any characters but '/'. */
  readonly dirName?: string;
  /** How many ext4 data disks (vda, vdb, …), 1 to 3; default 1. */
  readonly disks?: number;
  readonly diskSizeMiB?: number;
  /** The format of the ext4 data disks; default qcow2 (raw: sparse `<target>.img` files). */
  readonly diskFormat?: 'qcow2' | 'raw';
  /** A block device holding an ext4 filesystem (see loop-device.ts): vda is that device, raw. */
  readonly blockDevice?: string;
  /** Adds a raw disk without a filesystem after the qcow2 disks. */
  readonly rawDisk?: boolean;
  /** Adds a cdrom: 'empty' drive, or 'iso' with a small file as its medium. */
  readonly cdrom?: 'empty' | 'iso';
  /** Start it (and wait for the guest agent); default true. */
  readonly start?: boolean;
  /** Run the writer workload on every ext4 disk; default true. */
  readonly writer?: boolean;
  /** Boot through UEFI (OVMF), with a variable store `<name>_VARS.fd` of its own in its folder. */
  readonly uefi?: boolean;
  /** Give it an emulated TPM 2.0 (swtpm). */
  readonly tpm?: boolean;
}

/** Debian's OVMF (package ovmf): the firmware and the empty variable store each domain copies. */
export const ovmf = { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' };

export interface TestDisk {
  readonly target: string;
  readonly path: string;
  readonly format: 'qcow2' | 'raw';
  readonly block?: boolean;
}

const registry = new Set<TestDomain>();

/** A throwaway domain of the tiny guest (see build-guest.sh), its files in its own folder. */
export class TestDomain {
  constructor(
    readonly name: string,
    readonly dir: string,
    /** The ext4 data disks, in target order. */
    readonly disks: readonly TestDisk[],
    readonly rawDisk: TestDisk | undefined,
    readonly consoleLog: string,
  ) {}

  async start(): Promise<void> {
    await virsh('start', '--domain', this.name);
  }

  async destroy(): Promise<void> {
    if (await this.isActive()) await tryVirsh('destroy', '--domain', this.name);
  }

  /** Clean shutdown through the agent (or ACPI), falling back to destroy after timeoutMs. */
  async shutdown(timeoutMs = 60_000): Promise<void> {
    if (!(await this.isActive())) return;
    await tryVirsh('shutdown', '--domain', this.name, '--mode', 'agent,acpi');
    const started = Date.now();
    while (Date.now() - started < timeoutMs) {
      if (!(await this.isActive())) return;
      await sleep(250);
    }
    await this.destroy();
  }

  async isActive(): Promise<boolean> {
    const result = await tryVirsh('domstate', '--domain', this.name);
    return result.exitCode === 0 && !['shut off', 'crashed'].includes(result.stdout.trim());
  }

  state(): Promise<string> {
    return domainState(this.name);
  }

  /** Waits for the guest agent; resolves with the milliseconds it took. */
  waitForAgent(timeoutMs = 60_000): Promise<number> {
    return waitForAgent(this.name, timeoutMs);
  }

  /** Runs a program in the guest; rejects when it exits non-zero. */
  async guestExec(argv: readonly string[]): Promise<string> {
    const result = await this.guestExecResult(argv);
    if (result.exitCode !== 0) {
      throw new Error(`${argv.join(' ')} in ${this.name} exited ${result.exitCode}: ${result.stderr.trim()}`);
    }
    return result.stdout;
  }

  guestExecResult(argv: readonly string[]): Promise<GuestExecResult> {
    return guestExec(this.name, argv);
  }

  /** The seq of the last record the writer on this disk (vda, vdb…) has written, 0 when none. */
  async lastSeq(target: string): Promise<number> {
    const result = await this.guestExecResult(['tail', '-n', '3', `/mnt/${target}/records.log`]);
    if (result.exitCode !== 0) return 0;
    // The writer may be amid its next record: only complete lines count.
    const lines = result.stdout.split('\n').slice(0, -1);
    const records = lines.map(parseRecord).filter((record) => record !== undefined);
    return records.at(-1)?.seq ?? 0;
  }

  /** Writes /marker on the disk's filesystem in the guest and syncs it to the disk. */
  writeMarker(target: string, text: string): Promise<void> {
    return this.writeFile(target, 'marker', text);
  }

  /**
   * The guest's init starts qemu-ga before it mounts the data disks: a file written through the agent
   * in between lands in the folder under the mount point and is hidden (and never on the disk).
   * Waits until every ext4 data disk is mounted at /mnt/<target>; one minute at most.
   */
  async waitForMounts(): Promise<void> {
    const patterns = this.disks.flatMap((disk) => ['-e', ` /mnt/${disk.target} `]);
    for (let tries = 0; tries < 300; tries += 1) {
      const result = await this.guestExecResult(['grep', '-c', ...patterns, '/proc/mounts']);
      if (Number(result.stdout.trim()) >= this.disks.length) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`the data disks of ${this.name} were not mounted in the guest within a minute`);
  }

  /** Writes a file on the disk's filesystem (mounted at /mnt/<target>) and syncs it to the disk. */
  async writeFile(target: string, file: string, content: string): Promise<void> {
    const path = `/mnt/${target}/${file}`;
    const handle = (await agentCommand(this.name, 'guest-file-open', { path, mode: 'w' })) as number;
    try {
      await agentCommand(this.name, 'guest-file-write', {
        handle,
        'buf-b64': Buffer.from(content).toString('base64'),
      });
    } finally {
      await agentCommand(this.name, 'guest-file-close', { handle });
    }
    await this.guestExec(['sync']);
  }

  /** Destroys and undefines the domain and removes its folder. */
  async cleanup(): Promise<void> {
    registry.delete(this);
    await this.destroy();
    // Metadata other tools leave (checkpoints of virtnbdbackup, snapshots) and a managed save image
    // would block the undefine.
    const metadata = ['--checkpoints-metadata', '--snapshots-metadata', '--managed-save'];
    const undefine = await tryVirsh('undefine', '--domain', this.name, '--nvram', ...metadata);
    if (undefine.exitCode !== 0) await tryVirsh('undefine', '--domain', this.name, ...metadata);
    await rm(this.dir, { recursive: true, force: true });
  }
}

export async function createTestDomain(options: TestDomainOptions = {}): Promise<TestDomain> {
  const name = options.name ?? `ubt-${randomBytes(4).toString('hex')}`;
  const diskCount = options.disks ?? 1;
  if (diskCount < 1 || diskCount > 3)
    throw new Error(`a test domain has 1 to 3 data disks, not ${diskCount}`);
  const dir = join(testRoot, options.dirName ?? name);
  await mkdir(dir, { recursive: true });
  const consoleLog = join(dir, 'console.log');
  const targets = ['vda', 'vdb', 'vdc', 'vdd'];
  const disks: TestDisk[] = [];
  const format = options.diskFormat ?? 'qcow2';
  if (options.blockDevice !== undefined)
    disks.push({ target: 'vda', path: options.blockDevice, format: 'raw', block: true });
  for (const target of targets.slice(disks.length, diskCount)) {
    const path = join(dir, `${target}.${format === 'raw' ? 'img' : 'qcow2'}`);
    await (format === 'raw' ? makeExt4Raw : makeExt4Qcow2)(path, options.diskSizeMiB ?? 64);
    disks.push({ target, path, format });
  }
  let rawDisk: TestDisk | undefined;
  if (options.rawDisk === true) {
    rawDisk = { target: targets[diskCount] ?? 'vdd', path: join(dir, 'raw.img'), format: 'raw' };
    await makeRawImage(rawDisk.path, 16);
  }
  let cdrom: string | null | undefined;
  if (options.cdrom === 'iso') {
    cdrom = join(dir, 'cdrom.iso');
    await makeRawImage(cdrom, 1);
  } else if (options.cdrom === 'empty') {
    cdrom = null;
  }
  let uefi: { code: string; vars: string } | undefined;
  if (options.uefi === true) {
    uefi = { code: ovmf.code, vars: join(dir, `${name}_VARS.fd`) };
    await copyFile(ovmf.vars, uefi.vars);
  }
  const xml = domainXml({
    name,
    ...(uefi === undefined ? {} : { uefi }),
    ...(options.tpm === true ? { tpm: true } : {}),
    kernel: join(guestDir, 'vmlinuz'),
    initrd: join(guestDir, 'initrd.img'),
    cmdline: `console=ttyS0 quiet${options.writer === false ? ' writer=0' : ''}`,
    consoleLog,
    disks: rawDisk === undefined ? disks : [...disks, rawDisk],
    ...(cdrom === undefined ? {} : { cdrom }),
  });
  const xmlPath = join(dir, 'domain.xml');
  await writeFile(xmlPath, xml);
  const domain = new TestDomain(name, dir, disks, rawDisk, consoleLog);
  registry.add(domain);
  try {
    await virsh('define', '--file', xmlPath);
    if (options.start !== false) {
      await domain.start();
      await domain.waitForAgent();
      await domain.waitForMounts();
    }
  } catch (error) {
    const console = await readFile(consoleLog, 'utf8').catch(() => '');
    await domain.cleanup();
    throw new Error(`test domain ${name} did not come up; its console:\n${console.slice(-3000)}`, {
      cause: error,
    });
  }
  return domain;
}

/** Cleans up every test domain this process created and has not cleaned up yet. */
export async function cleanupAll(): Promise<void> {
  const failures: unknown[] = [];
  for (const domain of [...registry]) {
    await domain.cleanup().catch((error: unknown) => failures.push(error));
  }
  if (failures.length > 0) throw new AggregateError(failures, 'cleaning up test domains failed');
}

/**
 * Waits until the writer on the disk (vda, vdb…) has written record `seq` and returns the last seq
 * it wrote; one minute at most, which a busy two-core machine needs.
 */
export async function waitForSeq(domain: TestDomain, target: string, seq: number): Promise<number> {
  for (let tries = 0; tries < 300; tries += 1) {
    const last = await domain.lastSeq(target);
    if (last >= seq) return last;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the writer on ${target} of ${domain.name} did not reach seq ${seq}`);
}
