import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { ReplicaState } from '../chain/replica.js';
import { syncModes } from '../chain/replica.js';
import { UserError } from '../errors.js';

const stateSuffix = '.replica.json';

const layerId = z.object({ path: z.string(), size: z.number(), mtimeMs: z.number() });
const schema = z.object({
  version: z.literal(1),
  domain: z.string(),
  mode: z.enum(syncModes),
  replica: z.string(),
  uuid: z.string(),
  macs: z.array(z.string()),
  updated: z.string(),
  disks: z.array(
    z.object({
      target: z.string(),
      origin: z.string(),
      prefix: z.string(),
      files: z.array(
        z.object({
          file: z.string(),
          format: z.string(),
          holds: z.array(layerId),
          sha256: z.string().optional(),
          stamp: z.object({ size: z.number(), mtimeMs: z.number() }).optional(),
        }),
      ),
    }),
  ),
  retired: z.array(z.string()),
});

/** Domain names may hold any character but '/'; '.' is encoded too so names stay unambiguous. */
export function encodeName(name: string): string {
  return encodeURIComponent(name).replaceAll('.', '%2E');
}

export function stateFile(dir: string, domain: string): string {
  return path.join(dir, `${encodeName(domain)}${stateSuffix}`);
}

export function readReplicaState(dir: string, domain: string): ReplicaState | undefined {
  const file = stateFile(dir, domain);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = schema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new UserError(
      `${file} is not a replica state this version understands (${parsed.error.issues[0]?.message ?? 'invalid'}). ` +
        `Move it away and sync into an empty folder.`,
    );
  return parsed.data;
}

/** Every replica state in DIR (of all domains synced into it). */
export function readAllReplicaStates(dir: string): ReplicaState[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith(stateSuffix))
    .flatMap((n) => {
      const domain = decodeURIComponent(n.slice(0, -stateSuffix.length));
      try {
        const state = readReplicaState(dir, domain);
        return state ? [state] : [];
      } catch {
        return [];
      }
    });
}

/** Writes a file so a crash leaves either the old content or the new, never a torn file. */
export function writeFileAtomic(file: string, content: string): void {
  const temp = path.join(path.dirname(file), `.ub-tmp.${path.basename(file)}`);
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
  fsyncDir(path.dirname(file));
}

/** Makes renames in `dir` durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeReplicaState(dir: string, state: ReplicaState): void {
  writeFileAtomic(stateFile(dir, state.domain), `${JSON.stringify(state, null, 2)}\n`);
}
