import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The nearest folder holding package.json: right both from test/rig and from the bundled demo.
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/** Where build-guest.sh puts the guest's kernel and initramfs. */
export const guestDir = path.join(projectRoot(), '.cache', 'guest');

/** Test domains' folders and scratch images live here: /tmp may be a small tmpfs. */
export const testRoot = '/var/tmp/unifi-backup-test';

export const libvirtUri = 'qemu:///system';
