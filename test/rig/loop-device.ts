import { randomBytes } from 'node:crypto';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { programRunner, runChecked } from '../../src/host/runner.js';
import { testRoot } from './rig-paths.js';
import { makeExt4Raw } from './test-disk.js';

/**
 * A real block device holding an ext4 filesystem: a loop device over a sparse file, named through a
 * symlink `/dev/<unique>/data` as LVM names a logical volume (/dev/VG/LV → /dev/dm-N). Real LVM
 * needs the kernel's device-mapper, which this machine kind lacks; a loop device is the block device
 * the tool sees either way. The names are unique, so parallel test streams never collide.
 */
export class LoopDevice {
  private constructor(
    /** The symlink a domain names, like /dev/VG/LV. */
    readonly path: string,
    /** The device node itself (/dev/loopN). */
    readonly node: string,
    private readonly file: string,
    private readonly folder: string,
  ) {}

  static async create(sizeMiB: number): Promise<LoopDevice> {
    const id = randomBytes(4).toString('hex');
    const file = join(testRoot, `loop-${id}.img`);
    await mkdir(testRoot, { recursive: true });
    await makeExt4Raw(file, sizeMiB);
    const { stdout } = await runChecked(programRunner, { argv: ['losetup', '--find', '--show', file] });
    const node = stdout.trim();
    const folder = `/dev/ubt-vg-${id}`;
    const device = new LoopDevice(join(folder, 'data'), node, file, folder);
    try {
      await mkdir(folder);
      await symlink(node, device.path);
    } catch (error) {
      await device.remove();
      throw error;
    }
    return device;
  }

  /** Detaches the loop device and removes its file and symlink folder. */
  async remove(): Promise<void> {
    await runChecked(programRunner, { argv: ['losetup', '--detach', this.node] });
    await rm(this.folder, { recursive: true, force: true });
    await rm(this.file, { force: true });
  }
}
