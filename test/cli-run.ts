import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const cliPath = fileURLToPath(new URL('../dist/unifi-backup.js', import.meta.url));

export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Lock and state folders of their own, so tests never touch the host's. */
export function isolatedEnv(): Record<string, string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-cli-'));
  return { UNIFI_BACKUP_LOCK_DIR: path.join(dir, 'lock'), UNIFI_BACKUP_STATE_DIR: path.join(dir, 'state') };
}

const defaultEnv = isolatedEnv();

/** Runs the built CLI (`npm run build` first) as a user would. */
export async function runCli(
  args: readonly string[],
  env: Record<string, string> = defaultEnv,
): Promise<CliResult> {
  const result = await execa('node', [cliPath, ...args], {
    reject: false,
    env: { ...env, NO_COLOR: '1' },
    stdin: 'ignore',
  });
  return { exitCode: result.exitCode ?? 1, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the CLI and requires success, showing its stderr when it fails. */
export async function runCliOk(args: readonly string[], env?: Record<string, string>): Promise<CliResult> {
  const result = await runCli(args, env);
  if (result.exitCode !== 0)
    throw new Error(
      `unifi-backup ${args.join(' ')} exited ${result.exitCode}:\n${result.stderr}\n${result.stdout}`,
    );
  return result;
}
