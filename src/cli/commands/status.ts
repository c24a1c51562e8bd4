import { Command } from 'commander';
import type { DomainOutcome } from '../../ops/all.js';
import { forEachDomain } from '../../ops/all.js';
import type { DomainStatus } from '../../ops/status.js';
import { formatTime, table } from '../format.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';

const when = (iso: string | undefined) => (iso === undefined ? '—' : formatTime(new Date(iso)));

export function statusLines(s: DomainStatus): string[] {
  const lines = [`${s.domain} (${s.runState}${s.persistent ? '' : ', transient'})`];
  lines.push(
    ...table(
      s.disks.map((d) => [
        `  ${d.target}`,
        d.chainLength === 0 ? 'not taking part' : `chain ${d.chainLength}`,
        d.blockJob === undefined ? '' : `block job: ${d.blockJob}`,
      ]),
    ),
  );
  lines.push(
    `  last incr ${when(s.lastBackup.incr)}, diff ${when(s.lastBackup.diff)}, maintenance ${when(s.lastBackup.maintenance)}`,
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

export function statusCommand(): Command {
  return new Command('status')
    .summary('per domain: state, chain lengths, last backups, pending journal, maintenance, block jobs')
    .argument('[domains...]', "domain names, or 'all' (the default)")
    .action(async (names: string[], _options: unknown, command: Command) => {
      const global = globalOptions(command);
      const ctx = opsContext(global);
      const { domainStatus } = await import('../../ops/status.js');
      const all = names.length === 0 || (names.length === 1 && names[0] === 'all');
      let outcomes: DomainOutcome<DomainStatus>[];
      if (all)
        outcomes = await forEachDomain(ctx, 'all', (name, read) => domainStatus(ctx, name, read), {
          readOnly: true,
          blockJobs: true,
        });
      else if (names.length === 1)
        outcomes = await forEachDomain(ctx, names[0] ?? '', (n) => domainStatus(ctx, n));
      else {
        outcomes = [];
        for (const name of names)
          outcomes.push(
            ...(await forEachDomain(ctx, name, (n) => domainStatus(ctx, n)).catch((error: unknown) => [
              {
                domain: name,
                status: 'failed' as const,
                error: error instanceof Error ? error : new Error(String(error)),
              },
            ])),
          );
      }
      report(outcomes, { json: global.json, all: all || names.length > 1 }, statusLines);
    });
}
