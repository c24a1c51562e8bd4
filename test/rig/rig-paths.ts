import { fileURLToPath } from 'node:url';

/** Where build-guest.sh puts the guest's kernel and initramfs. */
export const guestDir = fileURLToPath(new URL('../../.cache/guest/', import.meta.url));

/** Test domains' folders and scratch images live here: /tmp may be a small tmpfs. */
export const testRoot = '/var/tmp/unifi-backup-test';

export const libvirtUri = 'qemu:///system';
