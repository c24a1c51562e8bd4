import { Command, Option } from 'commander';
import { UsageError } from '../../errors.js';
import type { SyncMode } from '../../chain/replica.js';
import type { SyncResult } from '../../ops/sync.js';
import { forEachDomain } from '../../ops/all.js';
import { withNotifications } from '../notifications.js';
import { formatBytes } from '../../bytes.js';
import { formatDuration, table } from '../format.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';
import { collect } from '../options.js';
import { requirePrograms } from '../../host/runner.js';

interface SyncOptions {
  target?: string;
  backupDir?: string;
  as?: string;
  define?: boolean;
  exclude: string[];
  force?: boolean;
}

const summaries: Record<SyncMode, string> = {
  full: 'write one standalone qcow2 per disk from the frozen chain, plus a bootable replica definition',
  diff: 'mirror the frozen layers as a chain: copy only new layers, prune what consolidation removed',
  inplace: 'keep one image per disk, merging only the newly frozen layers into it',
};

export function syncLines(result: SyncResult): string[] {
  const head = result.dryRun
    ? [`${result.domain}: sync ${result.mode} into ${result.target} plan (dry run, nothing changed):`]
    : [
        `${result.domain}: sync ${result.mode} into ${result.target} done in ${formatDuration(result.durationMs)}, ` +
          `${formatBytes(result.bytesCopied)} copied`,
      ];
  return [
    ...head,
    ...(result.dryRun
      ? result.steps.map((s, i) => `  ${i + 1}. ${s}`)
      : table(result.disks.map((d) => [`  ${d.target}`, d.files.join(' ← ')]))),
    ...(result.steps.length === 0 ? ['  up to date: nothing to copy'] : []),
    `  replica '${result.replica}': ${result.definition}${result.defined ? ' (defined)' : ` (define it: virsh define '${result.definition}', or sync with --define)`}`,
    ...result.notes.map((n) => `  note: ${n}`),
  ];
}

function modeCommand(mode: SyncMode): Command {
  return new Command(mode)
    .summary(summaries[mode])
    .argument('<domain>', "domain name, or 'all'")
    .option('-t, --target <dir>', 'the folder the replica lives in')
    .addOption(new Option('-b, --backup-dir <dir>', 'the same as --target (seed: -b)').hideHelp())
    .option('--as <name>', 'name of the replica domain (default: <domain>-replica)')
    .option('--define', 'define (or redefine) the replica domain in libvirt')
    .option('--force', 'run even while the domain is in maintenance (see: maintenance)')
    .addOption(
      new Option('--exclude <disk>', 'leave a disk (target like vdb, or its file) out; repeatable')
        .argParser(collect)
        .default([]),
    )
    .action(async (domain: string, options: SyncOptions, cmd: Command) => {
      const global = globalOptions(cmd);
      const target = options.target ?? options.backupDir;
      if (target === undefined)
        throw new UsageError(`sync ${mode} needs the replica's folder: --target DIR (or --backup-dir DIR)`);
      if (options.as !== undefined && domain === 'all')
        throw new UsageError(
          `--as names one replica, so it cannot be used with 'all'; leave it out (each replica is named <domain>-replica)`,
        );
      const ctx = opsContext(global);
      requirePrograms(['virsh', 'qemu-img']);
      const { syncDomain } = await import('../../ops/sync.js');
      const { recordRuns } = await import('../../ops/run-record.js');
      const facts = (r: SyncResult) => ({ level: mode, durationMs: r.durationMs, bytes: r.bytesCopied });
      const outcomes = await withNotifications(cmd, 'sync', domain, facts, () =>
        forEachDomain(
          ctx,
          domain,
          recordRuns(ctx, 'sync', mode, (name) =>
            syncDomain(ctx, name, {
              mode,
              target,
              define: options.define === true,
              exclude: options.exclude,
              force: options.force === true,
              ...(options.as === undefined
                ? {}
                : { as: domain === 'all' ? `${name}-${options.as}` : options.as }),
            }),
          ),
        ),
      );
      report(
        outcomes,
        { json: global.json, all: domain === 'all', durationOf: (r) => r.durationMs },
        syncLines,
      );
    });
}

export function syncCommand(): Command {
  return new Command('sync')
    .summary('keep a bootable replica of a domain in another folder: full, diff, inplace')
    .description(
      'Copy the frozen state of a domain into DIR as a replica that can be defined and booted.\n' +
        'Seed form: unifi-backup -a sync -m full|diff|inplace -b DIR DOMAIN',
    )
    .addCommand(modeCommand('full'))
    .addCommand(modeCommand('diff'))
    .addCommand(modeCommand('inplace'));
}
