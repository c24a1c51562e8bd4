import { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { forEachDomain } from '../../ops/all.js';
import type { OpsContext } from '../../ops/context.js';
import type * as MaintenanceOps from '../../ops/maintenance.js';
import type { MaintenanceResult } from '../../ops/maintenance-window.js';
import { confirm } from '../confirm.js';
import { globalOptions, opsContext } from '../context.js';
import { formatDuration, table } from '../format.js';
import { report } from '../report.js';
import { requirePrograms } from '../../host/runner.js';

const shortName = (file: string) => file.slice(file.lastIndexOf('/') + 1);

export function maintenanceLines(result: MaintenanceResult): string[] {
  if (result.dryRun)
    return [
      `${result.domain}: maintenance ${result.action} plan (dry run, nothing changed):`,
      ...result.steps.map((s, i) => `  ${i + 1}. ${s}`),
      ...result.notes.map((n) => `  note: ${n}`),
    ];
  return [
    `${result.domain}: maintenance ${result.action} done in ${formatDuration(result.durationMs)}`,
    ...table(result.disks.map((d) => [`  ${d.target}`, d.chain.map(shortName).join(' ← ')])),
    ...(result.action === 'enter' && result.memoryFile !== undefined
      ? [`  memory state: ${result.memoryFile}`]
      : []),
    ...result.notes.map((n) => `  note: ${n}`),
  ];
}

async function runOnDomains(
  command: Command,
  domain: string,
  operation: (ops: typeof MaintenanceOps, ctx: OpsContext, name: string) => Promise<MaintenanceResult>,
): Promise<void> {
  const global = globalOptions(command);
  const ctx = opsContext(global);
  requirePrograms(['virsh', 'qemu-img']);
  const ops = await import('../../ops/maintenance.js');
  const { recordRuns } = await import('../../ops/run-record.js');
  const outcomes = await forEachDomain(
    ctx,
    domain,
    recordRuns(ctx, 'maintenance', command.name(), (name) => operation(ops, ctx, name)),
  );
  report(
    outcomes,
    { json: global.json, all: domain === 'all', durationOf: (r) => r.durationMs },
    maintenanceLines,
  );
}

function enterCommand(): Command {
  return new Command('enter')
    .summary('start a window: a maintenance layer on every disk, an instant undo point')
    .argument('<domain>', "domain name, or 'all'")
    .option('-q, --quiesce', 'freeze guest filesystems through the guest agent during the snapshot')
    .option('-s, --memory-state <dir>', 'also save the memory state into DIR, so drop can resume the VM')
    .action(
      async (domain: string, options: { quiesce?: boolean; memoryState?: string }, command: Command) => {
        await runOnDomains(command, domain, (ops, ctx, name) =>
          ops.enterMaintenance(ctx, name, {
            quiesce: options.quiesce === true,
            ...(options.memoryState === undefined ? {} : { memoryDir: options.memoryState }),
          }),
        );
      },
    );
}

function saveCommand(): Command {
  return new Command('save')
    .summary('end the window keeping the changes: merge each maintenance layer into the layer beneath')
    .argument('<domain>', "domain name, or 'all'")
    .option(
      '--consolidate',
      'as the original script: commit the whole chain into the base (ends the backup chain)',
    )
    .option('-y, --yes', 'do not ask for confirmation (--consolidate)')
    .action(async (domain: string, options: { consolidate?: boolean; yes?: boolean }, command: Command) => {
      const global = globalOptions(command);
      const consolidate = options.consolidate === true;
      if (consolidate && options.yes !== true && !global.dryRun) {
        const what = domain === 'all' ? 'every domain in maintenance' : `domain '${domain}'`;
        if (!(await confirm(`Commit every layer of ${what} into its base and end its backup chain?`)))
          throw new UsageError('maintenance save --consolidate cancelled: nothing was changed');
      }
      await runOnDomains(command, domain, (ops, ctx, name) =>
        ops.saveMaintenance(ctx, name, { consolidate }),
      );
    });
}

function dropCommand(): Command {
  return new Command('drop')
    .summary('end the window throwing the changes away: every disk back at its state of enter')
    .argument('<domain>', "domain name, or 'all'")
    .option('--force', 'running without memory state: stop the VM, revert its disks and start it again')
    .action(async (domain: string, options: { force?: boolean }, command: Command) => {
      await runOnDomains(command, domain, (ops, ctx, name) =>
        ops.dropMaintenance(ctx, name, { force: options.force === true }),
      );
    });
}

export function maintenanceCommand(): Command {
  return new Command('maintenance')
    .summary('maintenance windows: enter (undo point), save (keep changes), drop (throw them away)')
    .description(
      'Before an upgrade, enter a window: every disk gets a maintenance layer. Afterwards keep the ' +
        'changes (save) or return the disks, and with -s the running VM, to their state of enter (drop). ' +
        'Backup verbs refuse a domain in maintenance (exit 3) unless --force.\n' +
        'Seed form: unifi-backup -a maintenance -m enter|save|drop [-q] [-s DIR] DOMAIN',
    )
    .addCommand(enterCommand())
    .addCommand(saveCommand())
    .addCommand(dropCommand());
}
