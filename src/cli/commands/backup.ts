import { Command, Option } from 'commander';
import type { SnapshotResult } from '../../ops/snapshot.js';
import type { ChainReport } from '../../ops/inspect.js';
import { forEachDomain } from '../../ops/all.js';
import { formatBytes, formatDuration, formatTime, table } from '../format.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';

const collect = (value: string, previous: string[]) => [...previous, value];

function excludeOption(): Option {
  return new Option('--exclude <disk>', 'leave a disk (target like vdb, or its file) out; repeatable')
    .argParser(collect)
    .default([]);
}

export function snapshotLines(result: SnapshotResult): string[] {
  const head = result.dryRun
    ? `${result.domain}: ${result.verb} plan (dry run, nothing changed):`
    : `${result.domain}: ${result.verb} done in ${formatDuration(result.durationMs)}`;
  const body = result.dryRun
    ? result.steps.map((s, i) => `  ${i + 1}. ${s}`)
    : table(result.disks.map((d) => [`  ${d.target}`, d.active, `(froze ${d.frozen})`]));
  return [head, ...body, ...result.notes.map((n) => `  note: ${n}`)];
}

export function chainLines(chain: ChainReport): string[] {
  const lines = [`${chain.domain} (${chain.runState})`];
  for (const disk of chain.disks) {
    lines.push(`  ${disk.target}`);
    const rows = disk.layers.map((l) => [
      `    ${l.active ? 'active' : 'frozen'}`,
      l.kind,
      l.time ? formatTime(l.time) : '',
      formatBytes(l.actualSize),
      l.path,
    ]);
    lines.push(...table(rows));
  }
  return lines;
}

interface SnapshotOptions {
  quiesce: boolean;
  exclude: string[];
  printFiles: boolean;
}

function snapshotVerb(verb: 'incr' | 'enable', summary: string): Command {
  return new Command(verb)
    .summary(summary)
    .argument('<domain>', "domain name, or 'all'")
    .option('-q, --quiesce', 'freeze guest filesystems through the guest agent during the snapshot', false)
    .option('-p, --print-files', 'afterwards, print the files to back up (as `files`)', false)
    .addOption(excludeOption())
    .action(async (domain: string, options: SnapshotOptions, command: Command) => {
      const global = globalOptions(command);
      const ctx = opsContext(global);
      const { snapshotDomain } = await import('../../ops/snapshot.js');
      const { backupFiles } = await import('../../ops/inspect.js');
      const outcomes = await forEachDomain(ctx, domain, async (name) => {
        const result = await snapshotDomain(ctx, name, {
          verb,
          kind: 'incr',
          quiesce: options.quiesce,
          exclude: options.exclude,
        });
        const files: readonly string[] =
          options.printFiles && !global.dryRun ? (await backupFiles(ctx, name, options.exclude)).files : [];
        return { ...result, files };
      });
      report(outcomes, { json: global.json, all: domain === 'all', durationOf: (r) => r.durationMs }, (r) => [
        ...snapshotLines(r),
        ...r.files,
      ]);
    });
}

export function showChainCommand(name: string): Command {
  return new Command(name)
    .summary("print each disk's chain, top (active) to base")
    .argument('<domain>', "domain name, or 'all'")
    .addOption(excludeOption())
    .action(async (domain: string, options: { exclude: string[] }, command: Command) => {
      const global = globalOptions(command);
      const ctx = opsContext(global);
      const { showChain } = await import('../../ops/inspect.js');
      const outcomes = await forEachDomain(ctx, domain, (name) => showChain(ctx, name, options.exclude));
      report(outcomes, { json: global.json, all: domain === 'all' }, chainLines);
    });
}

export function backupCommand(): Command {
  return new Command('backup')
    .summary('prepare domains for backup: incr, enable, showchain')
    .description(
      'Freeze disk state with external qcow2 snapshots so a backup program can read the frozen layers.\n' +
        'Seed form: unifi-backup -a backup -m incr [-q] [-p] DOMAIN',
    )
    .addCommand(snapshotVerb('incr', 'dump the config, then freeze every disk under a new incr layer'))
    .addCommand(snapshotVerb('enable', 'start a chain (the same as incr)'))
    .addCommand(showChainCommand('showchain'));
}

export function filesCommand(): Command {
  return new Command('files')
    .summary('print what a backup program must read: frozen layers and config dumps, one per line')
    .argument('<domain>', "domain name, or 'all'")
    .addOption(excludeOption())
    .action(async (domain: string, options: { exclude: string[] }, command: Command) => {
      const global = globalOptions(command);
      const ctx = opsContext(global);
      const { backupFiles } = await import('../../ops/inspect.js');
      const outcomes = await forEachDomain(ctx, domain, (name) => backupFiles(ctx, name, options.exclude));
      report(outcomes, { json: global.json, all: domain === 'all', summary: false }, (r) => [...r.files]);
    });
}
