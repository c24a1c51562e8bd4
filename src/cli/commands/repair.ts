import { Command } from 'commander';
import type { RepairResult } from '../../ops/repair.js';
import { forEachDomain } from '../../ops/all.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';

export function repairLines(result: RepairResult): string[] {
  if (result.actions.length === 0) return [`${result.domain}: nothing to repair`];
  return [
    `${result.domain}: ${result.dryRun ? 'repair plan (dry run, nothing changed)' : 'repaired'}:`,
    ...result.actions.flatMap((a) => a.split('\n').map((line) => `  ${line}`)),
  ];
}

export function repairCommand(): Command {
  return new Command('repair')
    .summary('finish or roll back what an interrupted run left behind (block jobs, definitions, files)')
    .description(
      'Reconciles a domain after a crash: pivots a finished block commit or aborts a leftover block job, ' +
        'resumes a domain left paused, makes the persistent definition match the running disks, and ' +
        'removes layers that were made but never joined a chain, or were due for deletion, once no chain ' +
        'of any domain references them. --dry-run lists the actions first.',
    )
    .argument('<domain>', "domain name, or 'all'")
    .option(
      '--discard-journal',
      'show the journal an interrupted run left (corrupt or not) and remove it, touching nothing else',
    )
    .action(async (domain: string, options: { discardJournal?: boolean }, command: Command) => {
      const global = globalOptions(command);
      const ctx = opsContext(global);
      const { discardDomainJournal, repairDomain } = await import('../../ops/repair.js');
      const repair = options.discardJournal === true ? discardDomainJournal : repairDomain;
      const outcomes = await forEachDomain(ctx, domain, (name) => repair(ctx, name));
      report(outcomes, { json: global.json, all: domain === 'all' }, repairLines);
    });
}
