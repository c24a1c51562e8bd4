import { parseDomainXml } from '../../src/host/domainxml.js';
import { programRunner, runChecked } from '../../src/host/runner.js';
import type { ProgramResult } from '../../src/host/runner.js';
import { libvirtUri } from './rig-paths.js';

export function virsh(...args: string[]): Promise<ProgramResult> {
  return runChecked(programRunner, { argv: ['virsh', '-c', libvirtUri, ...args] });
}

/** Like virsh(), but resolves with the result whatever the exit code. */
export function tryVirsh(...args: string[]): Promise<ProgramResult> {
  return programRunner({ argv: ['virsh', '-c', libvirtUri, ...args] });
}

/** The files the running definition of a domain names for its disks, in target order. */
export async function liveSources(name: string): Promise<(string | undefined)[]> {
  return parseDomainXml((await virsh('dumpxml', '--domain', name)).stdout).disks.map((d) => d.source);
}

export async function domainState(name: string): Promise<string> {
  return (await virsh('domstate', '--domain', name)).stdout.trim();
}

/**
 * The `virsh snapshot-create` processes running for a domain, with their parents: a snapshot the
 * tool prepared (started before it had its document) must be used or gone when the tool exits.
 */
export async function snapshotRuns(domain: string): Promise<{ pid: number; parent: number }[]> {
  const { stdout } = await programRunner({ argv: ['ps', '-eo', 'pid=,ppid=,args='] });
  return stdout
    .split('\n')
    .filter((line) => line.includes(`snapshot-create --domain ${domain}`))
    .map((line) => {
      const [pid, parent] = line.trim().split(/\s+/).map(Number);
      return { pid: pid ?? 0, parent: parent ?? 0 };
    });
}
