import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync } from 'node:fs';
import { UserError } from '../errors.js';
import type * as z from '../schema.js';

/** State files are small; anything larger is not one of ours. */
const maxStateBytes = 16 * 1024 * 1024;

export interface StateFileKind {
  /** What the file is, for messages: "journal of domain 'vm'". */
  readonly what: string;
  /** What the user does about a corrupt or foreign one, e.g. the command that resolves it. */
  readonly remedy: string;
}

/**
 * The raw text of a state file, never through a symlink; undefined when there is none. A file that
 * is not a regular file of ours, or too large to be one, is refused.
 */
export function readStateText(file: string, kind: StateFileKind, limit = maxStateBytes): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP')
      throw new UserError(
        `${file} is a symbolic link; refusing to follow it. Nothing was changed. ${kind.remedy}`,
        { cause: error },
      );
    throw new UserError(
      `cannot read the ${kind.what} ${file} (${code ?? String(error)}). Nothing was changed. ${kind.remedy}`,
      { cause: error },
    );
  }
  try {
    const st = fstatSync(fd);
    const uid = process.geteuid?.() ?? st.uid;
    const foreign = !st.isFile()
      ? 'is not a regular file'
      : st.uid !== uid
        ? `belongs to uid ${st.uid}, not to uid ${uid} that runs unifi-backup`
        : st.size > limit
          ? `is ${st.size} bytes, more than a state file holds`
          : undefined;
    if (foreign !== undefined)
      throw new UserError(`the ${kind.what} ${file} ${foreign}. Nothing was changed. ${kind.remedy}`);
    const buffer = Buffer.alloc(st.size);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, length);
      if (n === 0) break;
      length += n;
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and validates a state file: a truncated, corrupt or foreign file is a UserError naming it
 * and what resolves it, never a crash, and nothing on disk is changed. `owner` names the fields that
 * must hold the given values (the domain a file is named for): checked after the schema, so a schema
 * is built once per process, not once per domain (zod compiles each object schema on first use).
 */
export function readStateFile<T extends z.ZodMiniType>(
  file: string,
  schema: T,
  kind: StateFileKind,
  owner: Readonly<Record<string, string>> = {},
): z.output<T> | undefined {
  const text = readStateText(file, kind);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UserError(
      `the ${kind.what} ${file} is not valid JSON (${(error as Error).message}; ${text.length} bytes), ` +
        `perhaps cut short by a full disk or written by something else. Nothing was changed. ${kind.remedy}`,
      { cause: error },
    );
  }
  const parsed = schema.safeParse(json);
  const problems = parsed.success
    ? Object.entries(owner)
        .filter(([field, value]) => (parsed.data as Record<string, unknown>)[field] !== value)
        .map(([field, value]) => `${field}: Invalid input: expected ${JSON.stringify(value)}`)
    : parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.join('.') || '(top)'}: ${issue.message}`);
  if (!parsed.success || problems.length > 0)
    throw new UserError(
      `the ${kind.what} ${file} is not one this version of unifi-backup wrote (${problems.join('; ')}). ` +
        `Nothing was changed. ${kind.remedy}`,
    );
  return parsed.data;
}

/** What shows of a state file's text: control characters escaped, so a terminal shows bytes, not effects. */
function printable(text: string): string {
  return text.replace(/[^\P{Cc}\n\t]/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * What is at a state file's path, for a user deciding to discard it: a symlink's target (never
 * followed), or a regular file's first `limit` bytes. Undefined when there is nothing.
 */
export function describeStateFile(file: string, limit: number): string | undefined {
  let st;
  try {
    st = lstatSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (st.isSymbolicLink()) return `a symbolic link to ${printable(readlinkSync(file))}`;
  if (st.isDirectory())
    throw new UserError(`${file} is a folder, not a state file. Check who made it, then remove it by hand.`);
  if (!st.isFile()) return 'not a regular file';
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const buffer = Buffer.alloc(Math.min(st.size, limit));
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    const more = st.size > length ? `\n… ${st.size - length} more bytes not shown` : '';
    return `${st.size} bytes, owner uid ${st.uid}:\n${printable(buffer.subarray(0, length).toString('utf8'))}${more}`;
  } finally {
    closeSync(fd);
  }
}
