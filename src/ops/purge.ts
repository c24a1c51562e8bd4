import { rm } from 'node:fs/promises';
import type { OpsContext } from './context.js';
import { fileReferences, unreadableChain } from './references.js';

export interface PurgeResult {
  readonly removed: readonly string[];
  readonly kept: readonly { file: string; reason: string }[];
}

/**
 * Deletes layers a merge left behind, each only when no chain of any domain on the host references
 * it — re-read now, after the merge finished (DESIGN §4, invariant 1).
 */
export async function purgeLayers(ctx: OpsContext, files: readonly string[]): Promise<PurgeResult> {
  const references = await fileReferences(ctx.host);
  const blind = references.get(unreadableChain);
  const removed: string[] = [];
  const kept: { file: string; reason: string }[] = [];
  for (const file of files) {
    const users = references.get(file);
    if (users)
      kept.push({ file, reason: `still in the chain of ${[...users].map((d) => `'${d}'`).join(', ')}` });
    else if (blind)
      kept.push({
        file,
        reason: `the chain of ${[...blind].join(', ')} cannot be read, so it may still be in use`,
      });
    else {
      await rm(file, { force: true });
      removed.push(file);
    }
  }
  return { removed, kept };
}
