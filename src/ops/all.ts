import { NoQcow2DiskError } from '../chain/eligibility.js';
import { mapConcurrently } from './concurrency.js';
import type { OpsContext } from './context.js';

export type DomainOutcome<T> =
  | { readonly domain: string; readonly status: 'ok'; readonly value: T }
  | { readonly domain: string; readonly status: 'skipped'; readonly reason: string }
  | { readonly domain: string; readonly status: 'failed'; readonly error: Error };

async function outcomeOf<T>(
  domain: string,
  operation: (domain: string) => Promise<T>,
): Promise<DomainOutcome<T>> {
  try {
    return { domain, status: 'ok', value: await operation(domain) };
  } catch (error) {
    if (error instanceof NoQcow2DiskError) return { domain, status: 'skipped', reason: error.message };
    return { domain, status: 'failed', error: error instanceof Error ? error : new Error(String(error)) };
  }
}

/**
 * Runs `operation` on one domain, or on every domain for `all`. With `all`, a failing domain does
 * not stop the others and a domain with nothing to back up is skipped; each runs under its own lock,
 * up to `ctx.jobs` of them at once, and the outcomes keep the order of `virsh list`.
 */
export async function forEachDomain<T>(
  ctx: OpsContext,
  target: string,
  operation: (domain: string) => Promise<T>,
): Promise<DomainOutcome<T>[]> {
  if (target !== 'all') return [{ domain: target, status: 'ok', value: await operation(target) }];
  const domains = await ctx.host.virsh.listDomains();
  return mapConcurrently(domains, ctx.jobs ?? 1, (domain) => outcomeOf(domain, operation));
}
