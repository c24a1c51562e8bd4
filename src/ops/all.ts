import { NoQcow2DiskError } from '../chain/eligibility.js';
import type { DomainDefinitions } from '../host/virsh.js';
import { mapConcurrently } from './concurrency.js';
import type { OpsContext } from './context.js';

export type DomainOutcome<T> =
  | { readonly domain: string; readonly status: 'ok'; readonly value: T }
  | { readonly domain: string; readonly status: 'skipped'; readonly reason: string }
  | { readonly domain: string; readonly status: 'failed'; readonly error: Error };

/** An operation on one domain; `prefetched` is set for read-only runs over `all`. */
export type DomainOperation<T> = (domain: string, prefetched?: DomainDefinitions) => Promise<T>;

/** Read-only reports over `all` read at least this many domains at once: each waits on qemu-img. */
const readers = 4;

async function outcomeOf<T>(domain: string, operation: () => Promise<T>): Promise<DomainOutcome<T>> {
  try {
    return { domain, status: 'ok', value: await operation() };
  } catch (error) {
    if (error instanceof NoQcow2DiskError) return { domain, status: 'skipped', reason: error.message };
    return { domain, status: 'failed', error: error instanceof Error ? error : new Error(String(error)) };
  }
}

/**
 * Runs `operation` on one domain, or on every domain for `all`. With `all`, a failing domain does
 * not stop the others and a domain with nothing to back up is skipped; each runs under its own lock,
 * up to `ctx.jobs` of them at once, and the outcomes keep the order of `virsh list`.
 *
 * `readOnly` operations (reports that change nothing and take no lock) get every domain's run state
 * and definitions from batched reads, each domain as soon as its batch is read, and run at least
 * four domains at once.
 */
export async function forEachDomain<T>(
  ctx: OpsContext,
  target: string,
  operation: DomainOperation<T>,
  options: {
    readonly readOnly?: boolean;
    /** With readOnly: also every running domain's block jobs, in the same batched way. */
    readonly blockJobs?: boolean;
  } = {},
): Promise<DomainOutcome<T>[]> {
  if (target !== 'all') return [{ domain: target, status: 'ok', value: await operation(target) }];
  const jobs = ctx.jobs ?? 1;
  if (options.readOnly === true) {
    // Each domain starts as soon as its batch is read, while libvirt reads the next ones.
    const listed = await ctx.host.virsh.readAllInBatches({ blockJobs: options.blockJobs === true });
    const [outcomes] = await Promise.all([
      mapConcurrently(listed, Math.max(jobs, readers), ({ name, definitions }) =>
        outcomeOf(name, async () => operation(name, await definitions)),
      ),
      // A batched read that failed (virsh timed out) fails the whole report, not each domain.
      Promise.all(listed.map((d) => d.definitions)),
    ]);
    return outcomes;
  }
  const domains = await ctx.host.virsh.listDomains();
  return mapConcurrently(domains, jobs, (domain) => outcomeOf(domain, () => operation(domain)));
}
