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
} from 'node:fs';
import path from 'node:path';
import type { Plan, Step } from '../chain/plan.js';

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
  return path.join(stateDir, 'journal', `${encodeURIComponent(domain).replace(/^\./, '%2E')}.json`);
}

// temp file + fsync + rename: a crash leaves either the old record or the new one, never half of one.
export function writeAtomically(file: string, content: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
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

export function readJournal(stateDir: string, domain: string): JournalRecord | undefined {
  try {
    return JSON.parse(readFileSync(journalFile(stateDir, domain), 'utf8')) as JournalRecord;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
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
