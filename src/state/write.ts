import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  lstatSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';

/** Makes the renames and creations in `dir` durable. */
export function fsyncFolder(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A symlink planted at a state file's path would make root read or replace whatever it points at. */
export function refuseSymlink(file: string): void {
  let isLink = false;
  try {
    isLink = lstatSync(file).isSymbolicLink();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (isLink)
    throw new UserError(
      `${file} is a symbolic link; refusing to follow it. Nothing was changed. ` +
        `Remove it (rm '${file}') after checking who planted it, then run again.`,
    );
}

/**
 * Writes every file the tool keeps (journals, maintenance records, replica states, config dumps,
 * generated profiles and units): a crash leaves the old content or the new, never half of it, and the
 * file is private (0600). The temporary file has a random name and is created exclusively without
 * following links, so nothing planted in the folder can redirect the write. `mode` is for the few
 * files other programs must read (metrics for node_exporter's textfile collector).
 */
export function writeStateFile(file: string, content: string | Uint8Array, mode = 0o600): void {
  refuseSymlink(file);
  const dir = path.dirname(file);
  const temp = path.join(dir, `.ub-tmp.${path.basename(file)}.${randomBytes(6).toString('hex')}`);
  const fd = openSync(
    temp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    try {
      if (mode !== 0o600) fchmodSync(fd, mode);
      writeFileSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncFolder(dir);
}
