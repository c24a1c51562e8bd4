import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../errors.js';
import { detachLoop, loopsOver } from '../host/blockdevices.js';
import { mountsAtOrBelow, mountTable, unmount } from '../host/mounts.js';
import type { OpsContext } from './context.js';
import type { MountRecord } from './mount-record.js';
import { readMountRecords, removeMountRecord, workFolder } from './mount-record.js';

/* Taking down what `mount` set up: at `unmount`, when `mount` fails, and what a crashed one left. */

/** The source name of the tmpfs `mount` puts at a mount point, by which takeDown knows it is the tool's own. */
export const tmpfsSource = 'unifi-backup';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Ends the work folder's qemu-storage-daemon, found by its pid file and checked by its command line. */
async function stopDaemon(work: string): Promise<boolean> {
  const pidFile = path.join(work, 'daemon.pid');
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return false;
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  if (path.basename(argv[0] ?? '') !== 'qemu-storage-daemon' || !argv.includes(pidFile)) return false;
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; alive(pid); waited += 100) {
    if (waited >= 10_000) process.kill(pid, 'SIGKILL');
    await sleep(100);
  }
  return true;
}

/**
 * Takes down everything one mount record names, whatever state a crash left it in: the filesystems
 * under the mount point (only when the tool's own tmpfs is there), the loop devices over the export
 * file, the daemon, a FUSE mount it left, then the work folder and the record.
 */
export async function takeDown(ctx: OpsContext, record: MountRecord): Promise<string[]> {
  const { runner } = ctx.host;
  const work = workFolder(ctx.stateDir, record.id);
  const exportFile = path.join(work, 'disk');
  const done: string[] = [];
  if (record.mountpoint !== undefined && (await ownTmpfsAt(record.mountpoint))) {
    for (const m of await mountsAtOrBelow(record.mountpoint)) await unmount(runner, m);
    done.push(`unmounted ${record.mountpoint}`);
  }
  for (const loop of await loopsOver(runner, exportFile)) {
    await detachLoop(runner, loop);
    done.push(`detached ${loop}`);
  }
  if (await stopDaemon(work)) done.push('stopped qemu-storage-daemon');
  for (const m of await mountsAtOrBelow(work)) await unmount(runner, m);
  const left = await mountsAtOrBelow(work);
  if (left.length > 0)
    throw new UserError(
      `${left.join(', ')} is still mounted; ${work} was kept. Unmount it (umount -l), then run again.`,
    );
  await rm(work, { recursive: true, force: true });
  removeMountRecord(ctx.stateDir, record.id);
  return done;
}

/** Whether the mount point holds the tmpfs `mount` puts there (and not something mounted since). */
async function ownTmpfsAt(mountpoint: string): Promise<boolean> {
  return (await mountTable()).some(
    (m) => m.mountPoint === mountpoint && m.type === 'tmpfs' && m.source === tmpfsSource,
  );
}

/**
 * Mounts a crashed `mount` left half made (its process is gone, its record incomplete), of one
 * domain or of all: taken down, or with --dry-run only named. Run by `mount` and `repair`.
 */
export async function clearStaleMounts(ctx: OpsContext, domain?: string): Promise<string[]> {
  const stale = readMountRecords(ctx.stateDir).filter(
    (r) => !r.complete && !alive(r.pid) && (domain === undefined || r.domain === domain),
  );
  const lines: string[] = [];
  for (const record of stale) {
    const what = `the mount of disk ${record.disk || '(not yet known)'} of '${record.domain}' that an interrupted run left (${workFolder(ctx.stateDir, record.id)})`;
    if (ctx.dryRun) lines.push(`would take down ${what}`);
    else lines.push(`took down ${what}${(await takeDown(ctx, record)).map((d) => `; ${d}`).join('')}`);
  }
  return lines;
}
