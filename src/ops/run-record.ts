import path from 'node:path';
import { DomainBusyError } from '../errors.js';
import { NoSuchDomainError } from '../host/virsh.js';
import { NoQcow2DiskError } from '../chain/eligibility.js';
import type { DomainLock } from '../lock/lock.js';
import { lockDomain } from '../lock/lock.js';
import { domainFileName } from '../naming.js';
import * as z from '../schema.js';
import { privateFolder } from '../state/folder.js';
import { readStateFile } from '../state/read.js';
import { writeStateFile } from '../state/write.js';
import type { OpsContext } from './context.js';

export const recordedVerbs = ['run', 'backup', 'sync', 'maintenance', 'verify'] as const;
export type RecordedVerb = (typeof recordedVerbs)[number];

/** One finished `run`, `backup`, `sync`, `maintenance` or `verify` of one domain. */
export interface RunRecord {
  readonly verb: RecordedVerb;
  /** The level or sub-verb as done (a `run incr` that became a diff records `diff`). */
  readonly level: string;
  /** ISO times. */
  readonly start: string;
  readonly end: string;
  readonly result: 'ok' | 'failed';
  /** The first lines of the error a failed run ended with. */
  readonly error?: string;
  readonly snapshot?: string;
  readonly bytesRead?: number;
  readonly bytesAdded?: number;
  readonly files?: number;
}

/** What a finished operation adds to its record beyond verb, level and times. */
export type RunDetails = Partial<
  Pick<RunRecord, 'level' | 'error' | 'snapshot' | 'bytesRead' | 'bytesAdded' | 'files'>
> & {
  /** An operation that returned normally but found problems (verify) counts as failed. */
  readonly failed?: boolean;
};

/** How many records a domain keeps at most besides the newest of each verb, level and result. */
export const keptRuns = 50;
/** Error messages longer than this are cut: a record is a summary, the log has the rest. */
const maxErrorChars = 2000;

const isoTime = z.iso.datetime({ offset: true });
const bytes = z.number().check(z.int(), z.nonnegative());

const recordSchema = z.strictObject({
  verb: z.enum(recordedVerbs),
  level: z.string().check(z.minLength(1), z.maxLength(40)),
  start: isoTime,
  end: isoTime,
  result: z.enum(['ok', 'failed']),
  error: z.optional(z.string().check(z.maxLength(maxErrorChars))),
  snapshot: z.optional(z.string().check(z.regex(/^[0-9a-f]{8,64}$/))),
  bytesRead: z.optional(bytes),
  bytesAdded: z.optional(bytes),
  files: z.optional(bytes),
});

const fileSchema = z.strictObject({
  domain: z.string(),
  runs: z.array(recordSchema).check(z.maxLength(keptRuns * 4)),
});

export function runRecordFile(stateDir: string, domain: string): string {
  return path.join(stateDir, 'runs', domainFileName(domain, '.json'));
}

function runsFolder(stateDir: string, create: boolean): boolean {
  return (
    privateFolder(stateDir, 'state folder', create) &&
    privateFolder(path.join(stateDir, 'runs'), 'state folder', create)
  );
}

/**
 * The run records of a domain, oldest first; empty when it has none. A corrupt or foreign file is a
 * UserError naming it (status shows it; nothing depends on it to keep a chain safe).
 */
export function lastRuns(stateDir: string, domain: string): readonly RunRecord[] {
  if (!runsFolder(stateDir, false)) return [];
  const file = runRecordFile(stateDir, domain);
  const content = readStateFile(
    file,
    fileSchema,
    {
      what: `run records of domain '${domain}'`,
      remedy:
        `They only tell status and metrics what ran; move the file away (mv '${file}' '${file}.bad') ` +
        'and the next run starts a new one.',
    },
    { domain },
  );
  return content?.runs ?? [];
}

/**
 * What is kept of a domain's records after `record` is added: the newest `keptRuns`, plus the newest
 * of each verb, level and result, so the last full backup and the last failure are never pushed out
 * by many incrementals. Pure; oldest first.
 */
export function boundRuns(runs: readonly RunRecord[], record: RunRecord): RunRecord[] {
  const all = [...runs, record];
  const keep = new Set<number>();
  const newestOf = new Set<string>();
  for (let i = all.length - 1; i >= 0; i--) {
    const r = all[i];
    if (r === undefined) continue;
    const key = `${r.verb}\n${r.level}\n${r.result}`;
    if (all.length - i <= keptRuns || !newestOf.has(key)) keep.add(i);
    newestOf.add(key);
  }
  return all.filter((_, i) => keep.has(i));
}

/** Writing a record takes a moment: a minute's wait means something is stuck. */
const recordsWaitSeconds = 60;

/**
 * Adds a record under a lock of the domain's records (`runs/DOMAIN.lock`, waited for): two runs
 * finishing at once, or a `verify` beside a `backup`, would otherwise both read the old records and
 * the later write would drop the other's record.
 */
export async function appendRun(
  stateDir: string,
  domain: string,
  record: RunRecord,
  held?: Promise<DomainLock | undefined>,
): Promise<void> {
  const lock = (await held) ?? (await lockRecords(stateDir, domain, recordsWaitSeconds));
  try {
    const content = { domain, runs: boundRuns(lastRuns(stateDir, domain), record) };
    writeStateFile(runRecordFile(stateDir, domain), `${JSON.stringify(content, null, 2)}\n`);
  } finally {
    lock.release();
  }
}

/** The lock of a domain's records: waited for up to `waitSeconds`, or taken only if free (undefined). */
function lockRecords(stateDir: string, domain: string, waitSeconds: number | undefined): Promise<DomainLock> {
  runsFolder(stateDir, true);
  return lockDomain(path.join(stateDir, 'runs'), domain, 'run record', { suffix: '.lock', waitSeconds });
}

function errorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > maxErrorChars ? `${message.slice(0, maxErrorChars - 1)}…` : message;
}

/**
 * Wraps a verb's per-domain operation so each finished attempt appends a run record, success or
 * failure. A dry run records nothing, nor does a refusal because the domain is busy, does not exist
 * or has no disk to back up (nothing ran; `all` skips such a domain).
 * A record that cannot be written is told on stderr and never changes the verb's own outcome.
 */
export function recordRuns<T>(
  ctx: OpsContext,
  verb: RecordedVerb,
  level: string,
  operation: (domain: string) => Promise<T>,
  details: (value: T) => RunDetails = () => ({}),
  options: { readonly lockFirst?: boolean } = {},
): (domain: string) => Promise<T> {
  return async (domain) => {
    const start = ctx.now();
    // A short operation (an incr) takes the records' lock while it runs, not after it: the lock's
    // flock runs beside the operation. A long one would keep a `verify` from recording meanwhile.
    let held = options.lockFirst === true && !ctx.dryRun ? startLocking(ctx, domain) : undefined;
    const write = async (record: Omit<RunRecord, 'verb' | 'start' | 'end'>) => {
      if (ctx.dryRun) return;
      try {
        const lock = held;
        held = undefined;
        await appendRun(
          ctx.stateDir,
          domain,
          { verb, start: start.toISOString(), end: ctx.now().toISOString(), ...record },
          lock,
        );
      } catch (error) {
        ctx.log(`domain '${domain}': the run record was not written: ${errorText(error)}`);
      }
    };
    try {
      return await recorded(operation, domain, level, details, write);
    } finally {
      // Not written (the domain was busy or missing): the lock taken first is given back.
      void held?.then((lock) => {
        lock?.release();
      });
    }
  };
}

/**
 * The records' lock, taken at once if it is free; undefined when it is not (another run is writing,
 * or holds it for its own incr): the write then waits for it as usual, and nothing waits meanwhile.
 */
function startLocking(ctx: OpsContext, domain: string): Promise<DomainLock | undefined> {
  return (async () => lockRecords(ctx.stateDir, domain, undefined))().catch(() => undefined);
}

/** Runs the operation and writes its record, success or failure (not when nothing ran). */
async function recorded<T>(
  operation: (domain: string) => Promise<T>,
  domain: string,
  level: string,
  details: (value: T) => RunDetails,
  write: (record: Omit<RunRecord, 'verb' | 'start' | 'end'>) => Promise<void>,
): Promise<T> {
  let value: T;
  try {
    value = await operation(domain);
  } catch (error) {
    const notRun =
      error instanceof DomainBusyError ||
      error instanceof NoSuchDomainError ||
      error instanceof NoQcow2DiskError;
    if (!notRun) await write({ level, result: 'failed', error: errorText(error) });
    throw error;
  }
  const { failed, ...rest } = details(value);
  await write({ level, ...rest, result: failed === true ? 'failed' : 'ok' });
  return value;
}

export const backupLevels = ['incr', 'diff', 'full'] as const;
export type BackupLevel = (typeof backupLevels)[number];

/** What `status` and `metrics` show of a domain's records. */
export interface RunSummary {
  /** The newest successful `run` or `backup` of each level. */
  readonly lastSuccess: Partial<Record<BackupLevel, RunRecord>>;
  /** The newest record of each verb. */
  readonly latest: Partial<Record<RecordedVerb, RunRecord>>;
  /** The newest failed record of any verb. */
  readonly lastFailure?: RunRecord;
  /** How many `run`/`backup` attempts failed since the last successful one. */
  readonly failedInRow: number;
}

const isBackup = (r: RunRecord) =>
  (r.verb === 'run' || r.verb === 'backup') && (backupLevels as readonly string[]).includes(r.level);

/** Pure: records oldest first → the summary. */
export function summarizeRuns(runs: readonly RunRecord[]): RunSummary {
  const lastSuccess: Partial<Record<BackupLevel, RunRecord>> = {};
  const latest: Partial<Record<RecordedVerb, RunRecord>> = {};
  let lastFailure: RunRecord | undefined;
  let failedInRow = 0;
  for (const r of runs) {
    latest[r.verb] = r;
    if (r.result === 'failed') lastFailure = r;
    if (!isBackup(r)) continue;
    if (r.result === 'ok') {
      lastSuccess[r.level as BackupLevel] = r;
      failedInRow = 0;
    } else failedInRow++;
  }
  return { lastSuccess, latest, ...(lastFailure === undefined ? {} : { lastFailure }), failedInRow };
}
