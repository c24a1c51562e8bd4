import { open, rm } from 'node:fs/promises';
import { programRunner, runChecked } from '../../src/host/runner.js';

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
  await runChecked(programRunner, { argv: ['mkfs.ext4', '-F', '-q', path] });
}

/** A qcow2 image holding an empty ext4 filesystem. */
export async function makeExt4Qcow2(path: string, sizeMiB: number): Promise<void> {
  const raw = `${path}.raw`;
  try {
    await makeExt4Raw(raw, sizeMiB);
    await runChecked(programRunner, { argv: ['qemu-img', 'convert', '-O', 'qcow2', raw, path] });
  } finally {
    await rm(raw, { force: true });
  }
}

/** A raw image, all zeros (no filesystem). */
export async function makeRawImage(path: string, sizeMiB: number): Promise<void> {
  await makeSparseFile(path, sizeMiB);
}

/**
 * A qcow2 image with a DOS partition table (sfdisk): partition 1 an ext4 filesystem labelled `label`
 * holding the files of `content`, partition 2 an empty unlabelled ext4, partition 3 no filesystem.
 * mkfs writes each filesystem at its partition's offset, so no partition device nodes are needed.
 */
export async function makePartitionedQcow2(path: string, label: string, content: string): Promise<void> {
  const raw = `${path}.raw`;
  await makeSparseFile(raw, 64);
  try {
    await runChecked(programRunner, {
      argv: ['sfdisk', '-q', raw],
      input:
        'label: dos\nstart=2048, size=40960, type=83\nstart=45056, size=40960, type=83\nstart=88064, type=83\n',
    });
    const ext4 = (offsetSectors: number, extra: readonly string[]) =>
      runChecked(programRunner, {
        argv: ['mkfs.ext4', '-F', '-q', ...extra, '-E', `offset=${offsetSectors * 512}`, raw, '20480k'],
      });
    await ext4(2048, ['-L', label, '-d', content]);
    await ext4(45056, []);
    await runChecked(programRunner, { argv: ['qemu-img', 'convert', '-O', 'qcow2', raw, path] });
  } finally {
    await rm(raw, { force: true });
  }
}
