import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { fileId } from '../host/fileid.js';
import type { OpsContext } from './context.js';
import { fileReferences, quoted, useOf } from './references.js';

export interface PurgeResult {
  readonly removed: readonly string[];
  readonly kept: readonly { file: string; reason: string }[];
}

/**
 * Deletes layers a merge left behind, each only when no chain of any domain on the host references
 * it by identity — re-read now, after the merge finished (DESIGN §4, invariant 1).
 */
export async function purgeLayers(ctx: OpsContext, files: readonly string[]): Promise<PurgeResult> {
  const references = await fileReferences(ctx.host);
  const removed: string[] = [];
  const kept: { file: string; reason: string }[] = [];
  for (const file of files) {
    if (!existsSync(file)) {
      removed.push(file);
      continue;
    }
    const use = useOf(references, await fileId(file), file);
    if (use.kind === 'used') kept.push({ file, reason: `still in the chain of ${quoted(use.by)}` });
    else if (use.kind === 'unknown') kept.push({ file, reason: `it may still be in use: ${use.why}` });
    else {
      await rm(file, { force: true });
      removed.push(file);
    }
  }
  return { removed, kept };
}
