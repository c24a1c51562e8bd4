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

export async function domainState(name: string): Promise<string> {
  return (await virsh('domstate', '--domain', name)).stdout.trim();
}
