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

/** A sparse raw image holding an empty ext4 filesystem. */
export async function makeExt4Raw(path: string, sizeMiB: number): Promise<void> {
  await makeSparseFile(path, sizeMiB);
  await runChecked(execaRunner, { argv: ['mkfs.ext4', '-F', '-q', path] });
}

/** A qcow2 image holding an empty ext4 filesystem. */
export async function makeExt4Qcow2(path: string, sizeMiB: number): Promise<void> {
  const raw = `${path}.raw`;
  try {
    await makeExt4Raw(raw, sizeMiB);
    await runChecked(execaRunner, { argv: ['qemu-img', 'convert', '-O', 'qcow2', raw, path] });
  } finally {
    await rm(raw, { force: true });
  }
}

/** A raw image, all zeros (no filesystem). */
export async function makeRawImage(path: string, sizeMiB: number): Promise<void> {
  await makeSparseFile(path, sizeMiB);
}
