import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as z from '../schema.js';
import { privateFolder } from '../state/folder.js';
import { readStateFile } from '../state/read.js';
import { writeStateFile } from '../state/write.js';

/**
 * What `mount` set up, recorded before its first step so that `unmount`, the next `mount` or
 * `repair` can take everything down after a crash: the mount point, and the private work folder
 * holding the export file, the daemon's pid file and the fetched layers.
 */
export interface MountRecord {
  readonly id: string;
  readonly domain: string;
  readonly disk: string;
  /** Undefined for `mount --list`, which mounts nothing. */
  readonly mountpoint?: string;
  /** The process that mounted; a record it left incomplete is stale once it is gone. */
  readonly pid: number;
  readonly complete: boolean;
}

const idPattern = /^[0-9a-f]{16}$/;

const recordSchema = z.object({
  id: z.string().check(z.regex(idPattern)),
  domain: z.string(),
  disk: z.string(),
  mountpoint: z.optional(z.string().check(z.startsWith('/'))),
  pid: z.number().check(z.int(), z.positive()),
  complete: z.boolean(),
});

export function mountsFolder(stateDir: string): string {
  return path.join(stateDir, 'mounts');
}

/** The private (0700) work folder of one mount. */
export function workFolder(stateDir: string, id: string): string {
  return path.join(mountsFolder(stateDir), id);
}

function recordFile(stateDir: string, id: string): string {
  return path.join(mountsFolder(stateDir), `${id}.json`);
}

function openFolder(stateDir: string, create: boolean): boolean {
  return (
    privateFolder(stateDir, 'state folder', create) &&
    privateFolder(mountsFolder(stateDir), 'state folder', create)
  );
}

export function newMountId(): string {
  return randomBytes(8).toString('hex');
}

export function writeMountRecord(stateDir: string, record: MountRecord): void {
  openFolder(stateDir, true);
  writeStateFile(recordFile(stateDir, record.id), `${JSON.stringify(record, null, 2)}\n`);
}

export function removeMountRecord(stateDir: string, id: string): void {
  rmSync(recordFile(stateDir, id), { force: true });
}

/** Every mount recorded in the state folder, each validated. */
export function readMountRecords(stateDir: string): MountRecord[] {
  if (!openFolder(stateDir, false)) return [];
  const ids = readdirSync(mountsFolder(stateDir))
    .filter((name) => name.endsWith('.json'))
    .map((name) => name.slice(0, -'.json'.length))
    .filter((id) => idPattern.test(id));
  return ids.flatMap((id) => {
    const file = recordFile(stateDir, id);
    const record = readStateFile(
      file,
      recordSchema,
      {
        what: 'mount record',
        remedy:
          `It names a mount point and the work folder ${workFolder(stateDir, id)}: unmount what is mounted ` +
          `there by hand (umount, losetup -d, kill qemu-storage-daemon), then move the file away ` +
          `(mv '${file}' '${file}.bad').`,
      },
      { id },
    );
    return record === undefined ? [] : [record];
  });
}
