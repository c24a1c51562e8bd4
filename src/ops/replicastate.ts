import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { ReplicaState } from '../chain/replica.js';
import { syncModes } from '../chain/replica.js';
import { replicaFileName } from '../naming.js';
import * as z from '../schema.js';
import { readStateFile } from '../state/read.js';
import { writeStateFile } from '../state/write.js';

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
          sha256: z.optional(z.string()),
          stamp: z.optional(z.object({ size: z.number(), mtimeMs: z.number() })),
        }),
      ),
    }),
  ),
  retired: z.array(z.string()),
});

export function stateFile(dir: string, domain: string): string {
  return path.join(dir, `${replicaFileName(domain)}${stateSuffix}`);
}

export function readReplicaState(dir: string, domain: string): ReplicaState | undefined {
  const file = stateFile(dir, domain);
  return readStateFile(
    file,
    schema,
    {
      what: `replica state of domain '${domain}'`,
      remedy: `Move it away (mv '${file}' '${file}.bad') and sync into an empty folder.`,
    },
    { domain },
  );
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

export function writeReplicaState(dir: string, state: ReplicaState): void {
  writeStateFile(stateFile(dir, state.domain), `${JSON.stringify(state, null, 2)}\n`);
}
