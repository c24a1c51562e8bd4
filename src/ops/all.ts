import { NoQcow2DiskError } from '../chain/eligibility.js';
import type { OpsContext } from './context.js';

export type DomainOutcome<T> =
  | { readonly domain: string; readonly status: 'ok'; readonly value: T }
  | { readonly domain: string; readonly status: 'skipped'; readonly reason: string }
  | { readonly domain: string; readonly status: 'failed'; readonly error: Error };

/**
 * Runs `operation` on one domain, or on every domain for `all`. With `all`, a failing domain does
 * not stop the others and a domain with nothing to back up is skipped; each runs under its own lock.
 */
export async function forEachDomain<T>(
  ctx: OpsContext,
  target: string,
  operation: (domain: string) => Promise<T>,
): Promise<DomainOutcome<T>[]> {
  if (target !== 'all') return [{ domain: target, status: 'ok', value: await operation(target) }];
  const outcomes: DomainOutcome<T>[] = [];
  for (const domain of await ctx.host.virsh.listDomains()) {
    try {
      outcomes.push({ domain, status: 'ok', value: await operation(domain) });
    } catch (error) {
      if (error instanceof NoQcow2DiskError)
        outcomes.push({ domain, status: 'skipped', reason: error.message });
      else
        outcomes.push({
          domain,
          status: 'failed',
          error: error instanceof Error ? error : new Error(String(error)),
        });
    }
  }
  return outcomes;
}
