import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { DomainBusyError, UserError } from '../errors.js';
import { MissingProgramError, ProgramKilledError } from '../host/runner.js';
import { privateFolder } from '../state/folder.js';
import { domainFileName } from '../naming.js';

export interface DomainLock {
  release(): void;
}

interface Holder {
  pid: number;
  verb: string;
  host: string;
  since: string;
}

const conflictExit = 75;

export function lockFile(lockDir: string, domain: string, suffix = '.lock'): string {
  return path.join(lockDir, domainFileName(domain, suffix));
}

/** Another lock than the domain's: its file's suffix, and how long to wait for it before giving up. */
export interface LockOptions {
  readonly suffix: string;
  /** How long to wait for a holder; undefined: not at all (busy at once). */
  readonly waitSeconds?: number;
}

/** Where locks live by default: under /run (root's, cleared at boot), not the world-writable /run/lock. */
export const defaultLockDir = '/run/unifi-backup';

/** How often a lock file swapped under us between open and flock is retried before giving up. */
const lockAttempts = 3;

/**
 * Takes the per-domain lock or throws DomainBusyError naming the holder.
 *
 * The lock is a kernel flock(2) on an open file description this process keeps open: util-linux
 * `flock` takes it on a descriptor we hand it and exits, and the kernel drops it when the last
 * descriptor closes — so a holder killed with SIGKILL holds nothing, with no stale-file guessing.
 * The folder must be ours alone, and the file a regular file of ours with one link: otherwise
 * another user could remove a held lock, or have the holder's name written into a file of theirs.
 */
export async function lockDomain(
  lockDir: string,
  domain: string,
  verb: string,
  options?: LockOptions,
): Promise<DomainLock> {
  privateFolder(lockDir, 'lock folder', true);
  const file = lockFile(lockDir, domain, options?.suffix);
  for (let attempt = 1; attempt <= lockAttempts; attempt++) {
    const fd = openLockFile(file, domain);
    // Registered before flock runs: another lock this process takes meanwhile (the run records'
    // beside the domain's) then reads this one in /proc/locks as its own, not as a holder of a
    // removed lock file (which would cost it the scan of every process's descriptors).
    const held = heldHere(fd);
    ownLocks.set(held, file);
    let taken = false;
    try {
      // Read while flock runs: the kernel takes an RCU grace period (10-20 ms) to list its locks.
      // A holder of a replaced file locked it before it was replaced, so before this read; one that
      // locks later finds the path names another file and tries again.
      const locks = readFile('/proc/locks', 'utf8').catch(() => undefined);
      const exitCode = await flockOn(fd, options?.waitSeconds);
      if (exitCode === conflictExit) throw new DomainBusyError(busyMessage(domain, file));
      if (exitCode !== 0)
        throw new UserError(
          `cannot lock ${file}: flock exited with ${exitCode}, so domain '${domain}' was not touched. ` +
            `Check that ${lockDir} is a local folder that supports flock(2), then run again.`,
        );
      // The lock holds only while the path still names the file we locked.
      if (!namesFile(file, fd)) continue;
      const orphan = removedWhileHeld(file, held, await locks);
      if (orphan !== undefined)
        throw new DomainBusyError(
          `domain '${domain}' is busy: pid ${orphan} holds a lock file that was removed or replaced at ` +
            `${file}. Wait for it to finish, then check who changed ${lockDir}.`,
        );
      taken = true;
      const holder: Holder = { pid: process.pid, verb, host: os.hostname(), since: new Date().toISOString() };
      ftruncateSync(fd, 0);
      writeSync(fd, `${JSON.stringify(holder)}\n`, 0);
    } finally {
      if (!taken) {
        ownLocks.delete(held);
        closeSync(fd);
      }
    }
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        ownLocks.delete(held);
        closeSync(fd);
      },
    };
  }
  throw new UserError(
    `the lock file ${file} of domain '${domain}' was removed or replaced while it was being taken, ` +
      `${lockAttempts} times, so domain '${domain}' was not touched. Find what changes ${lockDir} (only ` +
      `unifi-backup should), then run again.`,
  );
}

/** Opens the lock file without following links, and refuses one that is not a plain file of ours. */
function openLockFile(file: string, domain: string): number {
  let fd: number;
  try {
    fd = openSync(
      file,
      constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK,
      0o600,
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP')
      throw new UserError(
        `${file} is a symbolic link; refusing to follow it, so domain '${domain}' was not touched. ` +
          `Remove it (rm '${file}') after checking who planted it, then run again.`,
        { cause: error },
      );
    throw new UserError(
      `cannot open the lock file ${file} (${code ?? String(error)}), so domain '${domain}' was not touched. ` +
        `Remove it (rm '${file}') after checking who made it, then run again.`,
      { cause: error },
    );
  }
  const st = fstatSync(fd);
  const uid = process.geteuid?.() ?? st.uid;
  const problem = !st.isFile()
    ? 'is not a regular file'
    : st.nlink !== 1
      ? `has ${st.nlink} hard links (another name for the same file could be anything)`
      : st.uid !== uid
        ? `belongs to uid ${st.uid}, not to uid ${uid} that runs unifi-backup`
        : undefined;
  if (problem === undefined) return fd;
  closeSync(fd);
  throw new UserError(
    `the lock file ${file} ${problem}; refusing to use it, so domain '${domain}' was not touched. ` +
      `Remove it (rm '${file}') after checking who made it, then run again.`,
  );
}

function namesFile(file: string, fd: number): boolean {
  const held = fstatSync(fd);
  try {
    const now = lstatSync(file);
    return now.dev === held.dev && now.ino === held.ino;
  } catch {
    return false;
  }
}

/**
 * A holder keeps its lock file open until it finishes: should the file be removed or replaced
 * meanwhile, its descriptor still shows the path, marked deleted. Such a holder still runs, so the
 * fresh file at the path locks nothing. Returns its pid.
 */
function removedWhileHeld(file: string, held: string, locks: string | undefined): number | undefined {
  if (!otherFlocksOnDevice(file, held, locks)) return undefined;
  const deleted = `${file} (deleted)`;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === deleted) return Number(pid);
      } catch {
        // The descriptor closed while we looked.
      }
    }
  }
  return undefined;
}

/**
 * The locks this process holds or is taking, as /proc/locks names their files (`MAJOR:MINOR:INODE`,
 * hex device numbers), and their paths: the records' lock an incr takes beside its domain's is not a
 * holder of a removed lock file (one held here at the same path still is).
 */
const ownLocks = new Map<string, string>();

/** How /proc/locks names a file (`MAJOR:MINOR:INODE`), device numbers in hex without leading zeros. */
function lockName(major: bigint, minor: bigint, ino: bigint): string {
  return `${major.toString(16)}:${minor.toString(16)}:${ino}`;
}

/** lockName of the file open on `fd`. */
function heldHere(fd: number): string {
  const { dev, ino } = fstatSync(fd, { bigint: true });
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return lockName(major, minor, ino);
}

/**
 * Whether the kernel knows a flock on the lock file's filesystem other than this one and the
 * others this process holds (/proc/locks: `FLOCK … MAJOR:MINOR:INODE`). Without one no removed lock
 * file can be held, and the scan of every process's descriptors (tens of milliseconds on a busy
 * host) is skipped.
 */
function otherFlocksOnDevice(file: string, self: string, locks: string | undefined): boolean {
  if (locks === undefined) return true;
  const device = self.slice(0, self.lastIndexOf(':') + 1);
  return locks.split('\n').some((line) => {
    const match = /\bFLOCK\b.*?\s([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (match === null) return false;
    const named = lockName(
      BigInt(`0x${match[1] ?? ''}`),
      BigInt(`0x${match[2] ?? ''}`),
      BigInt(match[3] ?? ''),
    );
    const ours = ownLocks.get(named);
    return named.startsWith(device) && named !== self && (ours === undefined || ours === file);
  });
}

/** flock(1) on descriptor 3: at once, or waiting up to `waitSeconds`; `conflictExit` when it is held. */
function flockOn(fd: number, waitSeconds?: number): Promise<number> {
  const wait = waitSeconds === undefined ? ['--nonblock'] : ['--timeout', String(waitSeconds)];
  const args = [...wait, '--exclusive', '--conflict-exit-code', String(conflictExit), '3'];
  return new Promise((resolve, reject) => {
    const child = spawn('flock', args, { stdio: ['ignore', 'ignore', 'inherit', fd] });
    child.on('error', (error: NodeJS.ErrnoException) => {
      const message = `cannot run flock: ${error.message}. Check that it is executable, then run again.`;
      reject(
        error.code === 'ENOENT'
          ? new MissingProgramError('flock', { cause: error })
          : new UserError(message, { cause: error }),
      );
    });
    child.on('close', (code, signal) => {
      if (signal !== null) reject(new ProgramKilledError(['flock', ...args], signal));
      else resolve(code ?? 1);
    });
  });
}

function busyMessage(domain: string, file: string): string {
  let who = 'another run';
  try {
    const holder = JSON.parse(readFileSync(file, 'utf8')) as Holder;
    // The file keeps the last holder's name; trust it only while that process lives.
    process.kill(holder.pid, 0);
    who = `'${holder.verb}' (pid ${holder.pid} on ${holder.host}, since ${holder.since})`;
  } catch {
    // The holder may be between taking the lock and writing its name, or not be one of ours.
  }
  return `domain '${domain}' is busy: ${who} holds its lock ${file}. Wait for it to finish, then try again.`;
}
