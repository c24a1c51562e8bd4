import { Command } from 'commander';
import type { Level } from '../../chain/consolidate.js';
import { UsageError } from '../../errors.js';
import type { BackupResult } from '../../ops/backup.js';
import type { ChainReport } from '../../ops/inspect.js';
import { forEachDomain } from '../../ops/all.js';
import { withNotifications } from '../notifications.js';
import { confirm } from '../confirm.js';
import { formatBytes } from '../../bytes.js';
import { formatDuration, formatTime, table } from '../format.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';
import { writeFileList } from '../../ops/filelist.js';
import { excludeOption, maxIncrOption, overlayDirOption, quiesceOption } from '../options.js';
import { overlayDirOf } from '../../config/overlaydir.js';
import { configOf } from '../settings.js';
import { requirePrograms } from '../../host/runner.js';

const shortName = (file: string) => file.slice(file.lastIndexOf('/') + 1);

export function backupLines(result: BackupResult): string[] {
  if (result.dryRun)
    return [
      `${result.domain}: ${result.level} plan (dry run, nothing changed):`,
      ...result.steps.map((s, i) => `  ${i + 1}. ${s}`),
      ...result.notes.map((n) => `  note: ${n}`),
    ];
  return [
    `${result.domain}: ${result.level} done in ${formatDuration(result.durationMs)}`,
    ...table(result.disks.map((d) => [`  ${d.target}`, d.chain.map(shortName).join(' ← ')])),
    ...result.notes.map((n) => `  note: ${n}`),
  ];
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

interface LevelOptions {
  quiesce?: boolean;
  memoryState?: string;
  exclude: string[];
  printFiles?: boolean;
  filesTo?: string;
  maxIncr?: number;
  yes?: boolean;
  force?: boolean;
  overlayDir?: string;
}

const summaries: Record<Level | 'enable', string> = {
  incr: 'dump the config, then freeze every disk under a new incr layer',
  enable: 'start a chain (the same as incr)',
  diff: 'pull every layer above the base into a new diff layer, remove the pulled layers; then incr',
  full: 'commit the whole chain into the base; then incr',
  disable: 'commit the whole chain into the base and end it: the domain runs from its base alone',
};

function levelCommand(level: Level | 'enable'): Command {
  return addLevelOptions(
    new Command(level).summary(summaries[level]).argument('<domain>', "domain name, or 'all'"),
    level,
  ).action(async (domain: string, options: LevelOptions, cmd: Command) => {
    await backUpLevel(level, domain, options, cmd);
  });
}

function addLevelOptions(command: Command, level: Level | 'enable'): Command {
  if (level !== 'disable')
    command
      .addOption(quiesceOption())
      .option('-s, --memory-state <dir>', 'also save the memory state, atomically with the disks, into DIR')
      .option('-p, --print-files', 'afterwards, print the files to back up (as `files`)')
      .option(
        '--files-to <file>',
        'afterwards, write the files to back up to FILE (private), for restic --files-from-verbatim',
      );
  if (level === 'incr') command.addOption(maxIncrOption());
  if (level !== 'disable') command.addOption(overlayDirOption());
  if (level === 'disable') command.option('-y, --yes', 'do not ask for confirmation');
  return command
    .addOption(excludeOption())
    .option('--force', 'run even while the domain is in maintenance (see: maintenance)');
}

async function backUpLevel(
  level: Level | 'enable',
  domain: string,
  options: LevelOptions,
  cmd: Command,
): Promise<void> {
  const global = globalOptions(cmd);
  if (options.filesTo !== undefined && domain === 'all')
    throw new UsageError("--files-to writes one domain's list: name the domain, not 'all'.");
  if (level === 'disable' && options.yes !== true && !global.dryRun) {
    const what = domain === 'all' ? 'every domain' : `domain '${domain}'`;
    if (!(await confirm(`Commit every layer of ${what} into its base and end the chain?`)))
      throw new UsageError('disable cancelled: nothing was changed');
  }
  const ctx = opsContext(global);
  requirePrograms(['virsh', 'qemu-img']);
  const { backupDomain } = await import('../../ops/backup.js');
  const { recordRuns } = await import('../../ops/run-record.js');
  const { backupFiles } = await import('../../ops/inspect.js');
  const facts = (r: BackupResult) => ({ level: r.level, durationMs: r.durationMs });
  const outcomes = await withNotifications(cmd, 'backup', domain, facts, () =>
    forEachDomain(
      ctx,
      domain,
      recordRuns(
        ctx,
        'backup',
        level,
        async (name) => {
          const overlayDir = overlayDirOf(options.overlayDir, configOf(cmd), name);
          const result = await backupDomain(ctx, name, {
            level,
            quiesce: options.quiesce === true,
            exclude: options.exclude,
            ...(options.memoryState === undefined ? {} : { memoryDir: options.memoryState }),
            ...(options.maxIncr === undefined ? {} : { maxIncr: options.maxIncr }),
            ...(overlayDir === undefined ? {} : { overlayDir }),
            force: options.force === true,
          });
          const wanted = (options.printFiles === true || options.filesTo !== undefined) && !global.dryRun;
          const files: readonly string[] = wanted
            ? (await backupFiles(ctx, name, options.exclude)).files
            : [];
          if (options.filesTo !== undefined && wanted) writeFileList(options.filesTo, name, files);
          return { ...result, files: options.printFiles === true ? files : [] };
        },
        (r) => ({ level: r.level }),
        { lockFirst: level === 'incr' || level === 'enable' },
      ),
    ),
  );
  report(outcomes, { json: global.json, all: domain === 'all', durationOf: (r) => r.durationMs }, (r) => [
    ...backupLines(r),
    ...r.files,
  ]);
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
      const outcomes = await forEachDomain(
        ctx,
        domain,
        (name, read) => showChain(ctx, name, options.exclude, read),
        { readOnly: true },
      );
      report(outcomes, { json: global.json, all: domain === 'all' }, chainLines);
    });
}

export function backupCommand(): Command {
  return new Command('backup')
    .summary('prepare domains for backup: incr, diff, full, enable, disable, showchain')
    .description(
      'Freeze disk state with external qcow2 snapshots so a backup program can read the frozen layers.\n' +
        'Seed form: unifi-backup -a backup -m incr|diff|full|enable|disable|showchain [-q] [-s DIR] [-p] DOMAIN',
    )
    .addCommand(levelCommand('incr'))
    .addCommand(levelCommand('diff'))
    .addCommand(levelCommand('full'))
    .addCommand(levelCommand('enable'))
    .addCommand(levelCommand('disable'))
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
      const outcomes = await forEachDomain(
        ctx,
        domain,
        (name, read) => backupFiles(ctx, name, options.exclude, read),
        { readOnly: true },
      );
      report(outcomes, { json: global.json, all: domain === 'all', summary: false }, (r) => [...r.files]);
    });
}
