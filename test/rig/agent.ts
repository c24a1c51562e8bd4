import { setTimeout as sleep } from 'node:timers/promises';
import { tryVirsh, virsh } from './virsh.js';

/** Sends one guest-agent command and returns its "return" value. */
export async function agentCommand(domain: string, execute: string, args?: object): Promise<unknown> {
  const command = JSON.stringify(args === undefined ? { execute } : { execute, arguments: args });
  const result = await virsh('qemu-agent-command', '--domain', domain, command);
  return (JSON.parse(result.stdout) as { return: unknown }).return;
}

/** Polls guest-ping until the agent answers; resolves with the milliseconds it took. */
export async function waitForAgent(domain: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const ping = await tryVirsh(
      'qemu-agent-command',
      '--domain',
      domain,
      '{"execute":"guest-ping"}',
      '--timeout',
      '5',
    );
    if (ping.exitCode === 0) return Date.now() - started;
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `guest agent of ${domain} did not answer within ${timeoutMs} ms: ${ping.stderr.trim()}`,
      );
    }
    await sleep(250);
  }
}

export interface GuestExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
}

/** Runs a program in the guest (argv[0] found in the guest's PATH) and waits for it. */
export async function guestExec(
  domain: string,
  argv: readonly string[],
  timeoutMs = 30_000,
): Promise<GuestExecResult> {
  const [path, ...arg] = argv;
  if (path === undefined) throw new Error('guestExec: empty argv');
  const { pid } = (await agentCommand(domain, 'guest-exec', { path, arg, 'capture-output': true })) as {
    pid: number;
  };
  const started = Date.now();
  for (;;) {
    const status = (await agentCommand(domain, 'guest-exec-status', { pid })) as ExecStatus;
    if (status.exited) {
      return {
        exitCode: status.exitcode ?? 128 + (status.signal ?? 0),
        stdout: decode(status['out-data']),
        stderr: decode(status['err-data']),
      };
    }
    if (Date.now() - started > timeoutMs)
      throw new Error(`${argv.join(' ')} in ${domain} ran over ${timeoutMs} ms`);
    await sleep(100);
  }
}

function decode(base64: string | undefined): string {
  return base64 === undefined ? '' : Buffer.from(base64, 'base64').toString('utf8');
}
