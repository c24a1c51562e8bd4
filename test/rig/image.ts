import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { programRunner, runChecked } from '../../src/host/runner.js';
import { judgeRecords } from './records.js';
import type { RecordsVerdict } from './records.js';
import { testRoot } from './rig-paths.js';

export interface ImageCheck {
  /** e2fsck -fn found nothing to fix (after replaying the journal, as a mount would). */
  readonly fsckClean: boolean;
  readonly fsckOutput: string;
  /** The verdict on /records.log; an absent file counts as empty. */
  readonly records: RecordsVerdict;
  /** The content of /marker (see TestDomain.writeMarker), when there is one. */
  readonly marker?: string;
}

/** Checks the ext4 filesystem in a qcow2 image (the top layer of any backing chain). */
export async function checkImage(imagePath: string): Promise<ImageCheck> {
  return withRawCopy(imagePath, async (raw) => {
    // A crash-consistent snapshot needs its journal replayed, as a mount would; -n cannot do that.
    const replay = await programRunner({ argv: ['e2fsck', '-y', '-E', 'journal_only', raw] });
    const fsck = await programRunner({ argv: ['e2fsck', '-fn', raw] });
    const records = await readFileFromRaw(raw, 'records.log');
    const marker = await readFileFromRaw(raw, 'marker');
    return {
      fsckClean: fsck.exitCode === 0,
      fsckOutput: [replay.stdout, replay.stderr, fsck.stdout, fsck.stderr].join('').trim(),
      records: judgeRecords(records ?? ''),
      ...(marker === undefined ? {} : { marker }),
    };
  });
}

/** A file's content from the ext4 filesystem in an image, undefined when it does not exist. */
export async function readFileFromImage(imagePath: string, file: string): Promise<string | undefined> {
  return withRawCopy(imagePath, async (raw) => {
    await programRunner({ argv: ['e2fsck', '-y', '-E', 'journal_only', raw] });
    return readFileFromRaw(raw, file);
  });
}

async function withRawCopy<T>(imagePath: string, use: (raw: string) => Promise<T>): Promise<T> {
  await mkdir(testRoot, { recursive: true });
  const dir = await mkdtemp(join(testRoot, 'image-'));
  try {
    const raw = join(dir, 'image.raw');
    // -U: the image may be in use by a running domain (a frozen layer is safe to read).
    await runChecked(programRunner, { argv: ['qemu-img', 'convert', '-U', '-O', 'raw', imagePath, raw] });
    return await use(raw);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function readFileFromRaw(raw: string, file: string): Promise<string | undefined> {
  const path = `/${file.replace(/^\/+/, '')}`;
  const stat = await programRunner({ argv: ['debugfs', '-R', `stat "${path}"`, raw] });
  if (stat.exitCode !== 0 || /not found|File not found/i.test(stat.stderr)) return undefined;
  const result = await runChecked(programRunner, { argv: ['debugfs', '-R', `cat "${path}"`, raw] });
  return result.stdout;
}
