import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { DomainBusyError, UserError } from '../errors.js';
import { MissingProgramError, ProgramKilledError } from '../host/runner.js';
import { domainFileName } from './filename.js';

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

export function lockFile(lockDir: string, domain: string): string {
  return path.join(lockDir, domainFileName(domain, '.lock'));
}

/**
 * Takes the per-domain lock or throws DomainBusyError naming the holder.
 *
 * The lock is a kernel flock(2) on an open file description this process keeps open: util-linux
 * `flock` takes it on a descriptor we hand it and exits, and the kernel drops it when the last
 * descriptor closes — so a holder killed with SIGKILL holds nothing, with no stale-file guessing.
 */
export async function lockDomain(lockDir: string, domain: string, verb: string): Promise<DomainLock> {
  try {
    mkdirSync(lockDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new UserError(
      `cannot create the lock folder ${lockDir} (${(error as NodeJS.ErrnoException).code ?? String(error)}), ` +
        `so domain '${domain}' was not touched. Give a folder with --lock-dir or UNIFI_BACKUP_LOCK_DIR.`,
      { cause: error },
    );
  }
  const file = lockFile(lockDir, domain);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP')
      throw new UserError(
        `${file} is a symbolic link; refusing to follow it, so domain '${domain}' was not touched. ` +
          `Remove it (rm '${file}') after checking who planted it, then run again.`,
        { cause: error },
      );
    throw error;
  }
  let taken = false;
  try {
    const exitCode = await flockOn(fd);
    if (exitCode === conflictExit) throw new DomainBusyError(busyMessage(domain, file));
    if (exitCode !== 0)
      throw new UserError(
        `cannot lock ${file}: flock exited with ${exitCode}, so domain '${domain}' was not touched. ` +
          `Check that ${lockDir} is a local folder that supports flock(2), then run again.`,
      );
    taken = true;
    const holder: Holder = { pid: process.pid, verb, host: os.hostname(), since: new Date().toISOString() };
    ftruncateSync(fd, 0);
    writeSync(fd, `${JSON.stringify(holder)}\n`, 0);
  } finally {
    if (!taken) closeSync(fd);
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      closeSync(fd);
    },
  };
}

function flockOn(fd: number): Promise<number> {
  const args = ['--nonblock', '--exclusive', '--conflict-exit-code', String(conflictExit), '3'];
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
