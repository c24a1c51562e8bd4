import { open, rm } from 'node:fs/promises';
import { execaRunner, runChecked } from '../../src/host/runner.js';

async function makeSparseFile(path: string, sizeMiB: number): Promise<void> {
  const file = await open(path, 'wx');
  try {
    await file.truncate(sizeMiB * 1024 * 1024);
  } finally {
    await file.close();
  }
}

/** A qcow2 image holding an empty ext4 filesystem. */
export async function makeExt4Qcow2(path: string, sizeMiB: number): Promise<void> {
  const raw = `${path}.raw`;
  await makeSparseFile(raw, sizeMiB);
  try {
    await runChecked(execaRunner, { argv: ['mkfs.ext4', '-F', '-q', raw] });
    await runChecked(execaRunner, { argv: ['qemu-img', 'convert', '-O', 'qcow2', raw, path] });
  } finally {
    await rm(raw, { force: true });
  }
}

/** A raw image, all zeros (no filesystem). */
export async function makeRawImage(path: string, sizeMiB: number): Promise<void> {
  await makeSparseFile(path, sizeMiB);
}
