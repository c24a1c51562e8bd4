import { readFile } from 'node:fs/promises';
import { UserError } from '../errors.js';
import type { Runner } from './runner.js';
import { runChecked } from './runner.js';

/** libvirt's qemu.conf: where `swtpm_user` and `swtpm_group` may be set. */
export const qemuConf = '/etc/libvirt/qemu.conf';

/** A `key = "value"` setting of qemu.conf, when it is set (not commented out). */
export function confSetting(conf: string, key: string): string | undefined {
  const match = new RegExp(`^\\s*${key}\\s*=\\s*"([^"\\n]*)"`, 'm').exec(conf);
  return match?.[1];
}

/**
 * The user and group libvirt runs swtpm as (qemu.conf's `swtpm_user`/`swtpm_group`, `tss` unless
 * set): a TPM state put back must be theirs, or swtpm cannot lock or read it.
 */
export async function swtpmOwner(runner: Runner): Promise<{ uid: number; gid: number }> {
  const conf = await readFile(qemuConf, 'utf8').catch(() => '');
  const user = confSetting(conf, 'swtpm_user') ?? 'tss';
  const group = confSetting(conf, 'swtpm_group') ?? 'tss';
  const id = async (argv: string[], what: string): Promise<number> => {
    const { stdout } = await runChecked(runner, { argv }).catch((error: unknown) => {
      throw new UserError(
        `libvirt runs swtpm as ${what}, which this host does not have; the TPM state cannot be put back. ` +
          `Check swtpm_user and swtpm_group in ${qemuConf} (and that swtpm is installed).`,
        { cause: error },
      );
    });
    const value = Number(stdout.trim().split(':')[2] ?? stdout.trim());
    if (!Number.isInteger(value)) throw new UserError(`cannot read the id of ${what} from: ${stdout.trim()}`);
    return value;
  };
  return {
    uid: await id(['id', '-u', '--', user], `user '${user}'`),
    gid: await id(['getent', 'group', '--', group], `group '${group}'`),
  };
}
