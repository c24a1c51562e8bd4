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
 * With `shell`, virsh's read-only questions go to one long-lived virsh process (`log`, when given,
 * is told each of them, for --debug); without, every question is a virsh run through `runner`.
 */
export function createHost(
  uri: string,
  runner: Runner = programRunner,
  timeouts: Timeouts = defaultTimeouts,
  shell?: { readonly log?: (line: string) => void },
): Host {
  const virshShell = shell === undefined ? undefined : new VirshShell(virshShellArgv(uri), shell.log);
  return { virsh: new Virsh(runner, uri, timeouts, virshShell), qemuImg: new QemuImg(runner), runner };
}
