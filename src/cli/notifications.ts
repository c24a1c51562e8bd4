import os from 'node:os';
import type { Command } from 'commander';
import type { DomainOutcome } from '../ops/all.js';
import { log } from './log.js';
import { configOf } from './settings.js';

export interface OutcomeFacts {
  readonly level?: string;
  readonly durationMs?: number;
  readonly bytes?: number;
}

/**
 * Runs a verb over its domains and sends the config file's `notify:` messages for each outcome
 * (`on-success` / `on-failure`). A failed notification is logged, never turns a backup into a failure.
 */
export async function withNotifications<T>(
  command: Command,
  verb: string,
  domain: string,
  facts: (value: T) => OutcomeFacts,
  run: () => Promise<DomainOutcome<T>[]>,
): Promise<DomainOutcome<T>[]> {
  const hook = configOf(command)?.notify;
  const wanted = hook !== undefined && (hook['on-success'].length > 0 || hook['on-failure'].length > 0);
  if (!wanted) return run();
  const { notifyOutcome } = await import('../notify/templates.js');
  const send = async (outcome: DomainOutcome<T>) => {
    if (outcome.status === 'skipped') return;
    const details = outcome.status === 'ok' ? facts(outcome.value) : { error: outcome.error.message };
    const results = await notifyOutcome(hook, {
      verb,
      domain: outcome.domain,
      ok: outcome.status === 'ok',
      host: os.hostname(),
      ...details,
    });
    for (const result of results)
      if (!result.ok)
        log.warn(`notification '${result.alias}' failed: ${result.error ?? ''}`, outcome.domain);
  };
  let outcomes: DomainOutcome<T>[];
  try {
    outcomes = await run();
  } catch (error) {
    // A single domain's failure is thrown (the CLI reports it); notify before it goes.
    await send({
      domain,
      status: 'failed',
      error: error instanceof Error ? error : new Error(String(error)),
    });
    throw error;
  }
  for (const outcome of outcomes) await send(outcome);
  return outcomes;
}
