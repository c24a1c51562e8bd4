import { mkdirSync, statSync } from 'node:fs';
import { UserError } from '../errors.js';

/** The folders the tool keeps its locks and state in, and how a user points it elsewhere. */
export type PrivateFolderKind = 'lock folder' | 'state folder';

const otherFolder: Record<PrivateFolderKind, string> = {
  'lock folder': '--lock-dir or UNIFI_BACKUP_LOCK_DIR',
  'state folder': '--state-dir or UNIFI_BACKUP_STATE_DIR',
};

/**
 * Checks that `dir` belongs to the user running the tool and nobody else may write to it: whoever can
 * write there can remove a held lock or plant a journal that tells the next run what to delete.
 * With `create`, a missing folder is made 0700; without, a missing folder is reported as false.
 */
export function privateFolder(dir: string, kind: PrivateFolderKind, create: boolean): boolean {
  if (create) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new UserError(
        `cannot create the ${kind} ${dir} (${(error as NodeJS.ErrnoException).code ?? String(error)}). ` +
          `Nothing was changed. Give a folder with ${otherFolder[kind]}.`,
        { cause: error },
      );
    }
  }
  let st;
  try {
    st = statSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !create) return false;
    throw new UserError(
      `cannot read the ${kind} ${dir} (${code ?? String(error)}). Nothing was changed. ` +
        `Give a folder with ${otherFolder[kind]}.`,
      { cause: error },
    );
  }
  if (!st.isDirectory())
    throw new UserError(
      `the ${kind} ${dir} is not a folder. Nothing was changed. Give a folder with ${otherFolder[kind]}.`,
    );
  const uid = process.geteuid?.() ?? st.uid;
  const problems = [
    ...(st.uid === uid ? [] : [`owned by uid ${st.uid}, not by uid ${uid} that runs unifi-backup`]),
    ...((st.mode & 0o022) === 0
      ? []
      : [`writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`]),
  ];
  if (problems.length > 0)
    throw new UserError(
      `the ${kind} ${dir} is ${problems.join(' and ')}: another user could remove or replace what ` +
        `unifi-backup keeps there, so nothing was done. Make it private (chown ${uid === 0 ? 'root:root' : uid} '${dir}'; ` +
        `chmod 700 '${dir}') or give another folder with ${otherFolder[kind]}.`,
    );
  return true;
}
