import { Argument, Command } from 'commander';
import { UsageError } from '../../errors.js';
import { forEachDomain } from '../../ops/all.js';
import { withNotifications } from '../notifications.js';
import type { RunResult } from '../../ops/run.js';
import type { RunDetails } from '../../ops/run-record.js';
import { formatBytes } from '../../bytes.js';
import { formatDuration, table } from '../format.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';
import { configOption, repository } from '../repository.js';
import { backupLines } from './backup.js';
import { excludeOption, maxIncrOption, overlayDirOption, quiesceOption } from '../options.js';
import { overlayDirOf } from '../../config/overlaydir.js';
import { requirePrograms } from '../../host/runner.js';

export function runLines(result: RunResult): string[] {
  if (result.dryRun) return [...backupLines(result.prepare), '  then: restic backup and retention'];
  const r = result.restic;
  const rows = [
    ['  prepare', formatDuration(result.phases.prepareMs), result.level],
    [
      '  restic',
      formatDuration(result.phases.resticMs),
      r === undefined
        ? ''
        : `${r.filesNew + r.filesChanged + r.filesUnmodified} files (${r.filesNew} new, ${r.filesChanged} changed, ` +
          `${r.filesUnmodified} unchanged), ${formatBytes(r.bytesRead)} read of ${formatBytes(r.bytesProcessed)}, ` +
          `${formatBytes(r.bytesAdded)} added, snapshot ${r.snapshotId}`,
    ],
    [
      '  retention',
      formatDuration(result.phases.retentionMs),
      result.retention === undefined
        ? 'no keep rules configured'
        : `kept ${result.retention.kept}, removed ${result.retention.removed.length}` +
          (result.retention.removed.length > 0 ? ` (${result.retention.removed.join(', ')})` : ''),
    ],
  ];
  for (const copy of result.devices ?? [])
    rows.push([
      `  ${copy.target} device`,
      formatDuration(copy.ms),
      copy.summary === undefined
        ? `${copy.device} unchanged since snapshot ${copy.snapshot}: not read`
        : `${copy.device} read whole (${formatBytes(copy.summary.bytesProcessed)}), ` +
          `${formatBytes(copy.summary.bytesAdded)} added, snapshot ${copy.snapshot}`,
    ]);
  return [
    `${result.domain}: run ${result.level} done in ${formatDuration(result.durationMs)}`,
    ...table(rows),
  ];
}

function runDetails(r: RunResult): RunDetails {
  return {
    level: r.level,
    files: r.files.length,
    ...(r.restic === undefined
      ? {}
      : { snapshot: r.restic.snapshotId, bytesRead: r.restic.bytesRead, bytesAdded: r.restic.bytesAdded }),
  };
}

interface RunOptions {
  config?: string;
  init?: boolean;
  prune?: boolean;
  quiesce?: boolean;
  exclude: string[];
  maxIncr?: number;
  overlayDir?: string;
}

export function runCommand(): Command {
  return new Command('run')
    .summary('prepare (as backup LEVEL), back up the frozen layers with restic, apply retention')
    .description(
      'Prepares exactly as `backup LEVEL`, runs `restic backup` on exactly the files `files` lists ' +
        "(tagged with the domain, 'kvm' and the level), then `restic forget` with the keep rules of " +
        'the config file for this domain. Repository settings: the restic: section of the config file, ' +
        'or restic’s own environment (RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE, …).',
    )
    .addArgument(new Argument('<level>', 'incr, diff or full').choices(['incr', 'diff', 'full']))
    .argument('<domain>', "domain name, or 'all'")
    .addOption(configOption())
    .option('--init', 'create the repository when there is none')
    .option('--prune', 'also prune the repository when retention removed snapshots')
    .addOption(quiesceOption())
    .addOption(excludeOption())
    .addOption(maxIncrOption())
    .addOption(overlayDirOption())
    .action(runLevel);
}

async function runLevel(level: string, domain: string, options: RunOptions, command: Command): Promise<void> {
  if (level !== 'incr' && level !== 'diff' && level !== 'full')
    throw new UsageError(`run: level must be incr, diff or full, not '${level}'`);
  const global = globalOptions(command);
  const ctx = opsContext(global);
  requirePrograms(['virsh', 'qemu-img']);
  const { config, settings, restic } = await repository(options.config, ctx.host.runner);
  const { openRepository, runDomain } = await import('../../ops/run.js');
  const { recordRuns } = await import('../../ops/run-record.js');
  const { retentionRules } = await import('../../config/restic.js');
  if (!global.dryRun && (await openRepository(restic, options.init === true)) === 'created')
    ctx.log(`created restic repository ${restic.repositoryText}`);
  const facts = (r: RunResult) => ({
    level: r.level,
    durationMs: r.durationMs,
    ...(r.restic === undefined ? {} : { bytes: r.restic.bytesAdded }),
  });
  const outcomes = await withNotifications(command, 'run', domain, facts, () =>
    forEachDomain(
      ctx,
      domain,
      recordRuns(
        ctx,
        'run',
        level,
        (name) => {
          const overlayDir = overlayDirOf(options.overlayDir, config, name);
          return runDomain(ctx, restic, name, {
            level: level,
            quiesce: options.quiesce === true,
            exclude: options.exclude,
            ...(options.maxIncr === undefined ? {} : { maxIncr: options.maxIncr }),
            host: settings.host ?? '',
            retention: retentionRules(config),
            prune: options.prune === true || config.retention?.prune === true,
            ...(overlayDir === undefined ? {} : { overlayDir }),
          });
        },
        runDetails,
      ),
    ),
  );
  report(outcomes, { json: global.json, all: domain === 'all', durationOf: (r) => r.durationMs }, runLines);
}
