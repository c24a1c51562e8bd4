import {
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  openSync,
  fsyncSync,
  closeSync,
  constants,
  lstatSync,
} from 'node:fs';
import path from 'node:path';
import type { Plan, Step } from '../chain/plan.js';
import { UserError } from '../errors.js';
import { domainFileName } from '../lock/filename.js';

/** What an interrupted run was doing: written before its first change, updated after each step. */
export interface JournalRecord {
  readonly domain: string;
  readonly verb: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly steps: readonly Step[];
  /** Number of steps that finished. */
  readonly done: number;
}

export function journalFile(stateDir: string, domain: string): string {
  return path.join(stateDir, 'journal', domainFileName(domain, '.json'));
}

/** A symlink planted where the journal lives would make root read or replace whatever it points at. */
function refuseSymlink(file: string): void {
  let isLink = false;
  try {
    isLink = lstatSync(file).isSymbolicLink();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (isLink)
    throw new UserError(
      `${file} is a symbolic link; refusing to follow it. Nothing was changed. ` +
        `Remove it (rm '${file}') after checking who planted it, then run again.`,
    );
}

// temp file + fsync + rename: a crash leaves either the old record or the new one, never half of one.
export function writeAtomically(file: string, content: string): void {
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new UserError(
      `cannot create the journal folder ${path.dirname(file)} (${(error as NodeJS.ErrnoException).code ?? String(error)}). ` +
        `Nothing was changed. Give a state folder with --state-dir or UNIFI_BACKUP_STATE_DIR.`,
      { cause: error },
    );
  }
  refuseSymlink(file);
  const temp = `${file}.${process.pid}.tmp`;
  const fd = openSync(
    temp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    writeFileSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
}

/**
 * Reads a state file (journal, maintenance record) never through a symlink; undefined when there is
 * none. `what` names it in the error.
 */
export function readStateFile(file: string, what: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') refuseSymlink(file);
    throw new UserError(
      `cannot read the ${what} ${file} (${code ?? String(error)}). Nothing was changed. ` +
        `Give a state folder with --state-dir or UNIFI_BACKUP_STATE_DIR.`,
      { cause: error },
    );
  }
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export function readJournal(stateDir: string, domain: string): JournalRecord | undefined {
  const text = readStateFile(journalFile(stateDir, domain), 'journal');
  return text === undefined ? undefined : (JSON.parse(text) as JournalRecord);
}

export class Journal {
  private record: JournalRecord;

  private constructor(
    private readonly file: string,
    plan: Plan,
  ) {
    this.record = {
      domain: plan.domain,
      verb: plan.verb,
      pid: process.pid,
      startedAt: new Date().toISOString(),
      steps: plan.steps,
      done: 0,
    };
  }

  static begin(stateDir: string, plan: Plan): Journal {
    const journal = new Journal(journalFile(stateDir, plan.domain), plan);
    writeAtomically(journal.file, JSON.stringify(journal.record));
    return journal;
  }

  get done(): number {
    return this.record.done;
  }

  stepDone(): void {
    this.record = { ...this.record, done: this.record.done + 1 };
    writeAtomically(this.file, JSON.stringify(this.record));
  }

  finish(): void {
    rmSync(this.file, { force: true });
  }
}

export function clearJournal(stateDir: string, domain: string): void {
  rmSync(journalFile(stateDir, domain), { force: true });
}
