import { statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';

/**
 * The overlay folder, resolved, once it is known to be a folder: overlays and config dumps of
 * block-device disks go there, and a missing folder must stop the verb before any change.
 */
export function existingOverlayDir(domain: string, overlayDir: string): string {
  const folder = path.resolve(overlayDir);
  let isFolder: boolean;
  try {
    isFolder = statSync(folder).isDirectory();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(
      `domain '${domain}': the overlay folder ${folder} (overlay-dir) cannot be read (${code ?? String(error)}). ` +
        `Nothing was changed. Create it (mkdir -m 700 '${folder}') or name another with --overlay-dir.`,
      { cause: error },
    );
  }
  if (!isFolder)
    throw new UserError(
      `domain '${domain}': the overlay folder ${folder} (overlay-dir) is not a folder. Nothing was changed. ` +
        `Name a folder with --overlay-dir or in the config file.`,
    );
  return folder;
}
