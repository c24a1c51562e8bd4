import { Command } from 'commander';
import type { RepairResult } from '../../ops/repair.js';
import { forEachDomain } from '../../ops/all.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';

export function repairLines(result: RepairResult): string[] {
  if (result.actions.length === 0) return [`${result.domain}: nothing to repair`];
  return [
    `${result.domain}: ${result.dryRun ? 'repair plan (dry run, nothing changed)' : 'repaired'}:`,
    ...result.actions.map((a) => `  ${a}`),
  ];
}

export function repairCommand(): Command {
  return new Command('repair')
    .summary('finish or roll back what an interrupted run left behind (block jobs, definitions, files)')
    .description(
      'Reconciles a domain after a crash: pivots a finished block commit or aborts a leftover block job,\n' +
        'resumes a domain left paused, makes the persistent definition match the running disks, and\n' +
        'removes layers that were made but never joined a chain, or were due for deletion, once no chain\n' +
        'of any domain references them. --dry-run lists the actions first.',
    )
    .argument('<domain>', "domain name, or 'all'")
    .action(async (domain: string, _options: unknown, command: Command) => {
      const global = globalOptions(command);
      const ctx = opsContext(global);
      const { repairDomain } = await import('../../ops/repair.js');
      const outcomes = await forEachDomain(ctx, domain, (name) => repairDomain(ctx, name));
      report(outcomes, { json: global.json, all: domain === 'all' }, repairLines);
    });
}
