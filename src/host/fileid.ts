import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * A file's identity: device and inode of the file a path resolves to (symlinked folders, relative
 * backing paths, `..`, bind mounts all end at the same pair). Two paths name one file exactly when
 * their identities are equal (DESIGN §4, invariant 1: never compare path strings).
 */
export type FileId = string & { readonly __brand: 'FileId' };

/** The identity of `file`, or undefined when it cannot be established (missing, unreadable folder). */
export async function fileId(file: string): Promise<FileId | undefined> {
  const found = await lookUp(file);
  return found === 'absent' ? undefined : found;
}

/**
 * The identity of `file`, or `absent` when the path names no file at all (its folder is there, the
 * file is not: it can be no other file's name), or neither when that cannot be told.
 */
export async function lookUp(file: string): Promise<FileId | 'absent' | undefined> {
  try {
    const s = await stat(file, { bigint: true });
    // A device has many nodes (/dev/VG/LV, /dev/mapper/VG-LV, /dev/dm-N): the device number is its identity.
    return (s.isBlockDevice() ? `block:${s.rdev}` : `${s.dev}:${s.ino}`) as FileId;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
    // A missing folder may be a filesystem not mounted yet: what it will hold is unknown.
    return (await fileId(path.dirname(file))) === undefined ? undefined : 'absent';
  }
}

/**
 * Whether `file` resolves to a block device (a logical volume, a partition); false when it cannot be
 * read. Synchronous: one `stat` of a local path, asked for every layer of every chain of `all`.
 */
export function isBlockDevice(file: string): boolean {
  try {
    return statSync(file).isBlockDevice();
  } catch {
    return false;
  }
}
