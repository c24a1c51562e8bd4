import { SomeFailedError } from '../errors.js';
import type { DomainOutcome } from '../ops/all.js';
import { formatDuration, table } from './format.js';
import { log } from './log.js';

export function printLines(lines: readonly string[]): void {
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function outcomeJson<T>(outcome: DomainOutcome<T>): unknown {
  switch (outcome.status) {
    case 'ok':
      return { domain: outcome.domain, status: 'ok', result: outcome.value };
    case 'skipped':
      return { domain: outcome.domain, status: 'skipped', reason: outcome.reason };
    case 'failed':
      return { domain: outcome.domain, status: 'failed', error: outcome.error.message };
  }
}

/**
 * Prints the outcomes of a verb: for one domain its result (or its error is rethrown to the CLI's
 * single error handler); for `all` each result, a summary table, and exit 4 when some failed.
 */
export function report<T>(
  outcomes: readonly DomainOutcome<T>[],
  options: { json: boolean; all: boolean; summary?: boolean; durationOf?: (value: T) => number },
  human: (value: T) => string[],
): void {
  if (!options.all) {
    const [only] = outcomes;
    if (only?.status === 'ok') {
      if (options.json) printJson(only.value);
      else printLines(human(only.value));
    }
    return;
  }
  if (options.json) printJson(outcomes.map(outcomeJson));
  else {
    for (const outcome of outcomes) {
      if (outcome.status === 'ok') printLines(human(outcome.value));
      if (outcome.status === 'failed') log.error(outcome.error.message, outcome.domain);
    }
    if (outcomes.length === 0) {
      // No table with a header and nothing under it: say so (on stderr, `files all` stays a list).
      log.info('no domains: virsh list --all shows none on this connection');
      return;
    }
    const rows = outcomes.map((o) => [
      o.domain,
      o.status,
      o.status === 'ok' && options.durationOf ? formatDuration(options.durationOf(o.value)) : '',
      o.status === 'failed' ? (o.error.message.split('\n')[0] ?? '') : o.status === 'skipped' ? o.reason : '',
    ]);
    const summary = table([['DOMAIN', 'RESULT', 'TIME', 'DETAIL'], ...rows]);
    // `files all` feeds a backup program: keep its stdout a pure list.
    if (options.summary === false) process.stderr.write(`${summary.join('\n')}\n`);
    else printLines(['', ...summary]);
  }
  const failed = outcomes.filter((o) => o.status === 'failed');
  if (failed.length > 0)
    throw new SomeFailedError(
      `${failed.length} of ${outcomes.length} domains failed: ${failed.map((o) => o.domain).join(', ')}`,
    );
}
