import { daemonSocket } from './libvirtrpc.js';
import type { Runner } from './runner.js';
import { programRunner } from './runner.js';
import { QemuImg } from './qemuimg.js';
import type { Timeouts } from './timeouts.js';
import { defaultTimeouts } from './timeouts.js';
import { Virsh } from './virsh.js';
import { VirshShell } from './virshshell.js';
import { virshShellArgv } from './virshprocess.js';

/** Everything the tool touches on the host, built once per invocation. */
export interface Host {
  readonly virsh: Virsh;
  readonly qemuImg: QemuImg;
  readonly runner: Runner;
}

/**
 * With `shell`, on `qemu:///system` read-only questions and a backup's changes to a running domain
 * (snapshot, block pull and active commit started, pivot) are calls on a connection of the tool's
 * own to the local daemon, and the other read-only questions go to one long-lived virsh process
 * (`log`, when given, is told each call and question, for --debug); without, every question and
 * change is a virsh run through `runner`.
 */
export function createHost(
  uri: string,
  runner: Runner = programRunner,
  timeouts: Timeouts = defaultTimeouts,
  shell?: { readonly log?: (line: string) => void },
): Host {
  const virshShell = shell === undefined ? undefined : new VirshShell(virshShellArgv(uri), shell.log);
  const socket = shell === undefined ? undefined : daemonSocket(uri);
  // Test-only fault injection (like src/ops/fault.ts): block jobs slow enough to restart libvirtd under.
  const jobMibPerSecond = Number(process.env.UNIFI_BACKUP_FAULT_JOB_MIB_S ?? 'NaN');
  const libvirt =
    socket === undefined
      ? undefined
      : {
          path: socket,
          ...(shell?.log ? { log: shell.log } : {}),
          ...(Number.isInteger(jobMibPerSecond) && jobMibPerSecond > 0 ? { jobMibPerSecond } : {}),
        };
  return {
    virsh: new Virsh(runner, uri, timeouts, virshShell, libvirt),
    qemuImg: new QemuImg(runner),
    runner,
  };
}
