import type { Runner } from './runner.js';
import { execaRunner } from './runner.js';
import { QemuImg } from './qemuimg.js';
import type { Timeouts } from './timeouts.js';
import { defaultTimeouts } from './timeouts.js';
import { Virsh } from './virsh.js';

/** Everything the tool touches on the host, built once per invocation. */
export interface Host {
  readonly virsh: Virsh;
  readonly qemuImg: QemuImg;
  readonly runner: Runner;
}

export function createHost(
  uri: string,
  runner: Runner = execaRunner,
  timeouts: Timeouts = defaultTimeouts,
): Host {
  return { virsh: new Virsh(runner, uri, timeouts), qemuImg: new QemuImg(runner), runner };
}
