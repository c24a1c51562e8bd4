import type { StatusSection } from './config.js';

/** When `status` calls a domain stale, failing or in need of attention. */
export interface StatusThresholds {
  /** No successful backup (nor restic snapshot, with --restic) for longer than this: stale. */
  readonly staleAfterMs: number;
  /** A maintenance window open longer than this: attention. */
  readonly maintenanceAfterMs: number;
  /** This many backups failed in a row: failing. */
  readonly failures: number;
  /** A chain holding more layers than this: attention (undefined: no limit). */
  readonly maxChain?: number;
}

const unitMs: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };

/** `26h`, `1d12h`, `90m` → milliseconds; the config schema has checked the form. */
export function intervalMs(text: string): number {
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)([dhms])/g)) ms += Number(n) * (unitMs[unit ?? 's'] ?? 0);
  return ms;
}

export function statusThresholds(section: StatusSection | undefined): StatusThresholds {
  const s = section ?? {};
  return {
    staleAfterMs: intervalMs(s['stale-after'] ?? '26h'),
    maintenanceAfterMs: intervalMs(s['maintenance-after'] ?? '24h'),
    failures: s.failures ?? 1,
    ...(s['max-chain'] === undefined ? {} : { maxChain: s['max-chain'] }),
  };
}
