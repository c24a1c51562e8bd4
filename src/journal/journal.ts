import { rmSync } from 'node:fs';
import path from 'node:path';
import type { Plan, Step } from '../chain/plan.js';
import { domainFileName } from '../naming.js';
import * as z from '../schema.js';
import { privateFolder } from '../state/folder.js';
import { describeStateFile, readStateFile } from '../state/read.js';
import type { StateFileKind } from '../state/read.js';
import { writeStateFile } from '../state/write.js';

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

const newLayer = z.object({
  target: z.string(),
  file: z.string(),
  backing: z.string(),
  backingFormat: z.string(),
});
const merge = z.object({ target: z.string(), top: z.string(), base: z.string(), baseFormat: z.string() });
const sources = z.array(
  z.object({
    target: z.string(),
    file: z.string(),
    format: z.optional(z.string()),
    device: z.optional(z.literal(true)),
  }),
);
const step = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('dump-config'),
    dumps: z.array(z.object({ flavour: z.enum(['live', 'inactive', 'migratable']), file: z.string() })),
  }),
  z.object({
    kind: z.literal('snapshot'),
    layers: z.array(newLayer),
    untouched: z.array(z.string()),
    quiesce: z.boolean(),
    memoryFile: z.optional(z.string()),
  }),
  z.object({ kind: z.literal('create-overlays'), layers: z.array(newLayer) }),
  z.object({ kind: z.literal('block-pull'), merge }),
  z.object({ kind: z.literal('rebase'), merge }),
  z.object({ kind: z.literal('block-commit'), merge }),
  z.object({ kind: z.literal('commit'), merge }),
  z.object({ kind: z.literal('redefine'), sources }),
  z.object({ kind: z.literal('purge'), files: z.array(z.string()) }),
  z.object({ kind: z.literal('destroy') }),
  z.object({ kind: z.literal('start') }),
  z.object({ kind: z.literal('restore'), memoryFile: z.string(), sources }),
]);
const journalSchema = z
  .object({
    domain: z.string(),
    verb: z.string(),
    pid: z.number().check(z.int()),
    startedAt: z.string(),
    steps: z.array(step),
    done: z.number().check(z.int(), z.nonnegative()),
  })
  .check(
    z.refine((record) => record.done <= record.steps.length, {
      error: 'more steps done than planned',
      path: ['done'],
    }),
  );

export function journalFile(stateDir: string, domain: string): string {
  return path.join(stateDir, 'journal', domainFileName(domain, '.json'));
}

export function journalKind(domain: string): StateFileKind {
  return {
    what: `journal of domain '${domain}'`,
    remedy: `See what it holds and remove it with: unifi-backup repair '${domain}' --discard-journal`,
  };
}

/** The journal folder, checked (and with `create`, made) private; false when there is none yet. */
export function journalFolder(stateDir: string, create: boolean): boolean {
  return (
    privateFolder(stateDir, 'state folder', create) &&
    privateFolder(path.join(stateDir, 'journal'), 'state folder', create)
  );
}

export function readJournal(stateDir: string, domain: string): JournalRecord | undefined {
  if (!journalFolder(stateDir, false)) return undefined;
  return readStateFile(journalFile(stateDir, domain), journalSchema, journalKind(domain), { domain });
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
    journalFolder(stateDir, true);
    const journal = new Journal(journalFile(stateDir, plan.domain), plan);
    writeStateFile(journal.file, JSON.stringify(journal.record));
    return journal;
  }

  get done(): number {
    return this.record.done;
  }

  stepDone(): void {
    this.record = { ...this.record, done: this.record.done + 1 };
    writeStateFile(this.file, JSON.stringify(this.record));
  }

  finish(): void {
    rmSync(this.file, { force: true });
  }
}

export function clearJournal(stateDir: string, domain: string): void {
  rmSync(journalFile(stateDir, domain), { force: true });
}

/** How much of a discarded journal is shown: a plan of a few disks fits. */
const shownBytes = 4096;

/**
 * `repair --discard-journal`: removes the domain's journal (whatever it is: corrupt, foreign, a
 * symlink, which is removed, not followed) and returns what it held, or undefined when there was none.
 */
export function discardJournal(stateDir: string, domain: string, dryRun: boolean): string | undefined {
  if (!journalFolder(stateDir, false)) return undefined;
  const file = journalFile(stateDir, domain);
  const held = describeStateFile(file, shownBytes);
  if (held !== undefined && !dryRun) rmSync(file);
  return held;
}
