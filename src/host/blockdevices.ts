import { UserError } from '../errors.js';
import * as z from '../schema.js';
import type { Runner } from './runner.js';
import { runChecked } from './runner.js';

/** A region of an image: a partition, or the whole image when it has no partition table. */
export interface ImageRegion {
  /** The partition number; undefined for the whole image. */
  readonly number?: number;
  readonly offset: number;
  readonly size: number;
}

/** What blkid found in a region; `type` undefined when it recognised nothing. */
export interface FoundFilesystem {
  readonly type?: string;
  readonly label?: string;
  readonly usage?: string;
}

const sfdiskSchema = z.object({
  partitiontable: z.object({
    sectorsize: z.optional(z.number().check(z.int(), z.positive())),
    partitions: z.optional(
      z.array(
        z.object({
          node: z.string(),
          start: z.number().check(z.int(), z.nonnegative()),
          size: z.number().check(z.int(), z.nonnegative()),
        }),
      ),
    ),
  }),
});

/**
 * The partitions of an image file (`sfdisk --json` reads the file itself, so no partition device
 * nodes are needed), or undefined when it holds no partition table. Entries outside the image are
 * refused: the table is read from a backup and is not trusted.
 */
export async function readPartitions(
  runner: Runner,
  file: string,
  imageSize: number,
  what: string,
): Promise<ImageRegion[] | undefined> {
  const result = await runner({ argv: ['sfdisk', '--json', '--', file] });
  if (result.exitCode !== 0 || result.stdout.trim() === '') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    throw new UserError(
      `sfdisk printed no readable partition table for ${what}: ${result.stdout.slice(0, 200)}`,
    );
  }
  const parsed = sfdiskSchema.safeParse(json);
  if (!parsed.success)
    throw new UserError(`the partition table of ${what} is not one sfdisk describes plainly`);
  const sector = parsed.data.partitiontable.sectorsize ?? 512;
  return (parsed.data.partitiontable.partitions ?? []).map((p) => {
    const number = Number(/(\d+)$/.exec(p.node)?.[1] ?? Number.NaN);
    const region = { number, offset: p.start * sector, size: p.size * sector };
    if (!Number.isInteger(number) || region.offset + region.size > imageSize || region.size === 0)
      throw new UserError(
        `the partition table of ${what} has an entry ${p.node} (start ${p.start}, ${p.size} sectors) that is ` +
          `not inside the ${imageSize}-byte disk; nothing was mounted.`,
      );
    return region;
  });
}

/** What `blkid -p` (low-level probing, no cache) finds in one region of an image file. */
export async function probeRegion(
  runner: Runner,
  file: string,
  region: ImageRegion,
): Promise<FoundFilesystem> {
  const result = await runner({
    argv: ['blkid', '-p', '-o', 'export', '-O', String(region.offset), '-S', String(region.size), '--', file],
  });
  // Exit 2: nothing recognised.
  if (result.exitCode === 2) return {};
  if (result.exitCode !== 0)
    throw new UserError(`blkid could not probe ${file} at offset ${region.offset}: ${result.stderr.trim()}`);
  const values = new Map(
    result.stdout
      .split('\n')
      .map((line) => /^([A-Z_]+)=(.*)$/.exec(line))
      .flatMap((m) => (m === null ? [] : [[m[1] ?? '', m[2] ?? ''] as const])),
  );
  const [type, label, usage] = [values.get('TYPE'), values.get('LABEL'), values.get('USAGE')];
  return {
    ...(type === undefined ? {} : { type }),
    ...(label === undefined ? {} : { label }),
    ...(usage === undefined ? {} : { usage }),
  };
}

/** A loop device over one region of `file` (writable: a journal replay writes through it). */
export async function attachLoop(runner: Runner, file: string, region: ImageRegion): Promise<string> {
  const { stdout } = await runChecked(runner, {
    argv: [
      'losetup',
      '--offset',
      String(region.offset),
      '--sizelimit',
      String(region.size),
      '--find',
      '--show',
      '--',
      file,
    ],
  });
  return stdout.trim();
}

const losetupSchema = z.object({
  loopdevices: z.array(z.object({ name: z.string(), 'back-file': z.optional(z.nullable(z.string())) })),
});

/** The loop devices whose backing file is `file` (however they were made, by this run or a crashed one). */
export async function loopsOver(runner: Runner, file: string): Promise<string[]> {
  const { stdout } = await runChecked(runner, { argv: ['losetup', '--json', '--list'] });
  if (stdout.trim() === '') return [];
  const parsed = losetupSchema.safeParse(JSON.parse(stdout));
  if (!parsed.success) throw new UserError('losetup --json --list printed something unexpected');
  return parsed.data.loopdevices
    .filter((l) => (l['back-file'] ?? '').replace(/ \(deleted\)$/, '') === file)
    .map((l) => l.name);
}

export async function detachLoop(runner: Runner, device: string): Promise<void> {
  await runChecked(runner, { argv: ['losetup', '--detach', device] });
}
