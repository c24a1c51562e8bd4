import { stat } from 'node:fs/promises';

/**
 * A file's identity: device and inode of the file a path resolves to (symlinked folders, relative
 * backing paths, `..`, bind mounts all end at the same pair). Two paths name one file exactly when
 * their identities are equal (DESIGN §4, invariant 1: never compare path strings).
 */
export type FileId = string & { readonly __brand: 'FileId' };

/** The identity of `file`, or undefined when it cannot be established (missing, unreadable folder). */
export async function fileId(file: string): Promise<FileId | undefined> {
  try {
    const s = await stat(file, { bigint: true });
    return `${s.dev}:${s.ino}` as FileId;
  } catch {
    return undefined;
  }
}
