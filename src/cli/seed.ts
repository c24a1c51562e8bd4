import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';

const seedActions = ['backup', 'sync', 'maintenance'] as const;

/** True when argv is the original script's form: `-a ACTION -m METHOD … DOMAIN`. */
export function isSeedInvocation(argv: readonly string[]): boolean {
  return argv.some((a) => a === '-a' || /^-[a-zA-Z]*a/.test(a)) && argv[0]?.startsWith('-') === true;
}

/**
 * Translates the original script's flags into this tool's subcommands, so existing users keep
 * typing what they typed: `-a backup -m incr -q -p VM` → `backup incr --quiesce --print-files VM`.
 */
export function translateSeedArgs(argv: readonly string[]): string[] {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        a: { type: 'string' },
        m: { type: 'string' },
        b: { type: 'string' },
        s: { type: 'string' },
        q: { type: 'boolean' },
        d: { type: 'boolean' },
        v: { type: 'boolean' },
        p: { type: 'boolean' },
        h: { type: 'boolean' },
        V: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw new UsageError(
      `${(error as Error).message}. Usage: unifi-backup -a ACTION -m METHOD [-q] [-s DIR] [-b DIR] [-p] [-d] [-v] DOMAIN`,
    );
  }
  const { values, positionals } = parsed;
  if (values.h === true) return ['--help'];
  if (values.V === true) return ['--version'];
  const action = values.a;
  if (action === undefined || !(seedActions as readonly string[]).includes(action))
    throw new UsageError(
      `-a must be one of ${seedActions.join(', ')} (got ${action === undefined ? 'nothing' : `'${action}'`})`,
    );
  if (values.m === undefined) throw new UsageError(`-a ${action} needs -m METHOD`);
  if (positionals.length !== 1)
    throw new UsageError(
      `expected exactly one domain name (or 'all'), got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`,
    );
  const out = [action, values.m];
  // The original's `maintenance save` committed the whole chain into the base: keep that result.
  if (action === 'maintenance' && values.m === 'save') out.push('--consolidate');
  if (values.q === true) out.push('--quiesce');
  if (values.s !== undefined) out.push('--memory-state', values.s);
  if (values.b !== undefined) out.push('--backup-dir', values.b);
  if (values.p === true) out.push('--print-files');
  if (values.d === true) out.push('--debug');
  if (values.v === true) out.push('--verbose');
  // `--` keeps a domain named like a flag a domain name.
  out.push('--', positionals[0] ?? '');
  return out;
}
