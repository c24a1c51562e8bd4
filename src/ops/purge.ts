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
 * it by identity — re-read now, after the merge finished (DESIGN §4, invariant 1). Every file is
 * judged first; the unreferenced ones are then deleted at once, side by side: deleting a large
 * layer can take 100 ms (a filesystem mounted with `discard` trims its blocks on the spot).
 */
export async function purgeLayers(ctx: OpsContext, files: readonly string[]): Promise<PurgeResult> {
  const references = await fileReferences(ctx.host);
  const removed: string[] = [];
  const unused: string[] = [];
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
      unused.push(file);
      removed.push(file);
    }
  }
  await Promise.all(unused.map((file) => rm(file, { force: true })));
  return { removed, kept };
}
