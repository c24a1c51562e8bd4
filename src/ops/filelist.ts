import path from 'node:path';
import { UserError } from '../errors.js';
import { privateFolder } from '../state/folder.js';
import { writeStateFile } from '../state/write.js';

/**
 * Writes the files a backup program must read as restic's `--files-from-verbatim` list: one path
 * per line, nothing else special. The folder must be root's alone, since whoever can change the
 * list chooses what the next scheduled backup reads.
 */
export function writeFileList(file: string, domain: string, files: readonly string[]): void {
  const broken = files.find((f) => f.includes('\n'));
  if (broken !== undefined)
    throw new UserError(
      `domain '${domain}': the file ${JSON.stringify(broken)} holds a line break, which a verbatim file ` +
        `list cannot hold. The backup layers are in place but ${file} was not written. Rename the disk file.`,
    );
  if (files.length === 0)
    throw new UserError(
      `domain '${domain}': there is nothing to back up (no frozen layer, no config dump), so ${file} ` +
        'was not written. Check the chain with: unifi-backup chain ' +
        `'${domain}'.`,
    );
  privateFolder(path.dirname(file), 'state folder', true);
  writeStateFile(file, files.map((f) => `${f}\n`).join(''));
}
