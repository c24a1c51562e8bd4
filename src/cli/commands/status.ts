import { Command } from 'commander';
import { UsageError, UserError } from '../../errors.js';
import type { DomainOutcome } from '../../ops/all.js';
import { forEachDomain } from '../../ops/all.js';
import type { RunRecord } from '../../ops/run-record.js';
import type { DomainStatus, StatusView } from '../../ops/status.js';
import { ageText } from '../../ops/verdict.js';
import { formatBytes } from '../../bytes.js';
import { formatTime, table } from '../format.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';
import { configOption, repository } from '../repository.js';
import { configOf } from '../settings.js';

const when = (iso: string | undefined) =>
  iso === undefined ? '—' : `${formatTime(new Date(iso))} (${ageText(Date.now() - Date.parse(iso))} ago)`;

const recordLine = (r: RunRecord) =>
  `${r.verb} ${r.level} ${when(r.end)}${r.snapshot === undefined ? '' : `, snapshot ${r.snapshot}`}`;

export function statusLines(s: DomainStatus): string[] {
  const lines = [`${s.domain} (${s.runState}${s.persistent ? '' : ', transient'}): ${s.verdict}`];
  lines.push(...s.reasons.map((r) => `  ! ${r.split('\n')[0] ?? ''}`));
  lines.push(
    ...table(
      s.disks.map((d) => [
        `  ${d.target}`,
        d.chainLength === 0 ? 'not taking part' : `chain ${d.chainLength}`,
        d.chainLength === 0 ? '' : formatBytes(d.bytes),
        d.blockJob === undefined ? '' : `block job: ${d.blockJob}`,
      ]),
    ),
  );
  const ok = s.runs.lastSuccess;
  lines.push(
    ...table([
      ['  last incr', ok.incr === undefined ? when(s.lastBackup.incr) : recordLine(ok.incr)],
      ['  last diff', ok.diff === undefined ? when(s.lastBackup.diff) : recordLine(ok.diff)],
      ['  last full', ok.full === undefined ? '—' : recordLine(ok.full)],
    ]),
  );
  const failure = s.runs.lastFailure;
  if (failure !== undefined)
    lines.push(`  last failure: ${recordLine(failure)}: ${failure.error?.split('\n')[0] ?? ''}`);
  if (s.restic !== undefined)
    lines.push(
      `  restic (host ${s.restic.host}): ${
        s.restic.newest === undefined
          ? 'no snapshot'
          : `newest snapshot ${s.restic.newest.id} ${when(s.restic.newest.time)}`
      }`,
    );
  lines.push(`  maintenance: ${s.maintenance === undefined ? 'no' : `since ${when(s.maintenance)}`}`);
  const j = s.pendingJournal;
  lines.push(
    j === undefined
      ? '  journal: none pending'
      : `  journal: '${j.verb}' (pid ${j.pid}, ${j.startedAt}) stopped after step ${j.done} of ${j.steps}; ` +
          `run: unifi-backup repair '${s.domain}'`,
  );
  return lines;
}

export interface StatusOptions {
  restic?: boolean;
  host?: string;
  config?: string;
}

/** Every named domain's status (or every domain's), as `status` and `metrics` report them. */
export async function collectStatuses(
  command: Command,
  names: readonly string[],
  options: StatusOptions,
): Promise<DomainOutcome<DomainStatus>[]> {
  if (options.host !== undefined && options.restic !== true)
    throw new UsageError('--host names whose restic snapshots to look at: add --restic');
  const ctx = opsContext(globalOptions(command));
  const [{ domainStatus }, { statusThresholds }] = await Promise.all([
    import('../../ops/status.js'),
    import('../../config/status.js'),
  ]);
  let view: StatusView = { thresholds: statusThresholds(configOf(command)?.status) };
  if (options.restic === true) {
    const { settings, restic } = await repository(options.config, ctx.host.runner);
    const host = options.host ?? settings.host ?? '';
    view = { ...view, restic: { host, snapshots: await restic.snapshots({ host }) } };
  }
  const all = names.length === 0 || (names.length === 1 && names[0] === 'all');
  if (all)
    return forEachDomain(ctx, 'all', (name, read) => domainStatus(ctx, name, view, read), {
      readOnly: true,
      blockJobs: true,
    });
  if (names.length === 1) return forEachDomain(ctx, names[0] ?? '', (n) => domainStatus(ctx, n, view));
  const outcomes: DomainOutcome<DomainStatus>[] = [];
  for (const name of names)
    outcomes.push(
      ...(await forEachDomain(ctx, name, (n) => domainStatus(ctx, n, view)).catch((error: unknown) => [
        {
          domain: name,
          status: 'failed' as const,
          error: error instanceof Error ? error : new Error(String(error)),
        },
      ])),
    );
  return outcomes;
}

export function statusCommand(): Command {
  return new Command('status')
    .summary('per domain: am I safe? verdict, last backups and failures, chains, journal, maintenance')
    .description(
      'Per domain a verdict — ok, attention, stale or failing — from the run records, the chains and the ' +
        'thresholds of the status: section of the config file, with every reason. With all (the default) ' +
        'or several domains, exits 1 when any domain is not ok and 4 when some could not be read.',
    )
    .argument('[domains...]', "domain names, or 'all' (the default)")
    .option('--restic', "also the newest restic snapshot of each domain and its age (one 'restic snapshots')")
    .option(
      '--host <name>',
      "with --restic: another host's snapshots (default: restic.host or this machine's)",
    )
    .addOption(configOption())
    .action(async (names: string[], options: StatusOptions, command: Command) => {
      const global = globalOptions(command);
      const outcomes = await collectStatuses(command, names, options);
      const several = names.length !== 1 || names[0] === 'all';
      report(outcomes, { json: global.json, all: several }, statusLines);
      const unsafe = outcomes.flatMap((o) =>
        o.status === 'ok' && o.value.verdict !== 'ok' ? [o.value] : [],
      );
      if (several && unsafe.length > 0)
        throw new UserError(
          `${unsafe.length} of ${outcomes.length} domains are not ok: ` +
            `${unsafe.map((s) => `${s.domain} (${s.verdict})`).join(', ')}. The reasons are listed above.`,
        );
    });
}
