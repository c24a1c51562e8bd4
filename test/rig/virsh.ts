import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDomainXml } from '../../src/host/domainxml.js';
import { programRunner, runChecked } from '../../src/host/runner.js';
import type { ProgramResult } from '../../src/host/runner.js';
import { libvirtUri } from './rig-paths.js';

export function virsh(...args: string[]): Promise<ProgramResult> {
  return runChecked(programRunner, { argv: ['virsh', '-c', libvirtUri, ...args] });
}

/**
 * A fresh folder to put first on PATH, holding a `virsh` shell script (`body`, given the real
 * virsh's path) that the tool's virsh runs go through.
 */
export function virshWrapper(body: (real: string) => string): string {
  const real = (process.env.PATH ?? '')
    .split(':')
    .map((folder) => path.join(folder, 'virsh'))
    .find((file) => existsSync(file));
  if (real === undefined) throw new Error('virsh is not on PATH');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-virsh-'));
  writeFileSync(path.join(dir, 'virsh'), `#!/bin/sh\n${body(real)}\n`, { mode: 0o755 });
  return dir;
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
