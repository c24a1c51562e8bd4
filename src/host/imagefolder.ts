import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * Makes `folder` (and any missing parent) for disk images QEMU will open: 0711, so QEMU, which runs
 * as its own user, can pass through to the (0600, libvirt-owned) images while nobody can list them.
 * Set with chmod: the umask of 077 the tool runs under would otherwise make them 0700.
 * Returns whether `folder` was created.
 */
export async function makeImageFolder(folder: string): Promise<boolean> {
  const first = await mkdir(folder, { recursive: true, mode: 0o711 });
  if (first === undefined) return false;
  for (let dir = path.resolve(folder); ; dir = path.dirname(dir)) {
    await chmod(dir, 0o711);
    if (dir === path.resolve(first) || dir === path.dirname(dir)) break;
  }
  return true;
}
