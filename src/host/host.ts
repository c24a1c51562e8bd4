import type { Runner } from './runner.js';
import { execaRunner } from './runner.js';
import { QemuImg } from './qemuimg.js';
import { Virsh } from './virsh.js';

/** Everything the tool touches on the host, built once per invocation. */
export interface Host {
  readonly virsh: Virsh;
  readonly qemuImg: QemuImg;
  readonly runner: Runner;
}

export function createHost(uri: string, runner: Runner = execaRunner): Host {
  return { virsh: new Virsh(runner, uri), qemuImg: new QemuImg(runner), runner };
}
