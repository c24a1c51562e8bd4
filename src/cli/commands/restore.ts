import { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { RestoreResult } from '../../ops/restore.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';
import { configOption, repository } from '../repository.js';

export function restoreLines(result: RestoreResult): string[] {
  return [
    `${result.domain}: restored${result.snapshot === undefined ? '' : ` from restic snapshot ${result.snapshot}`} ` +
      `as '${result.name}' into ${result.folder}`,
    ...result.disks.map(
      (d) => `  ${d.target}: ${d.chain.map((f) => f.slice(f.lastIndexOf('/') + 1)).join(' ← ')}`,
    ),
    ...(result.rebased.length > 0 ? [`  backing paths rewritten in ${result.rebased.length} layers`] : []),
    `  definition: ${result.definition}`,
    result.started
      ? `  domain '${result.name}' defined and started`
      : result.defined
        ? `  domain '${result.name}' defined; start it with: virsh start '${result.name}'`
        : `  define it with: virsh define '${result.definition}'`,
  ];
}

interface RestoreOptions {
  from: string;
  to?: string;
  as?: string;
  define?: boolean;
  start?: boolean;
  config?: string;
}

export function restoreCommand(): Command {
  return new Command('restore')
    .summary('restore a domain from a restic snapshot or a folder, optionally as a new domain')
    .description(
      "Puts the backed-up layers in place, rebuilds each disk's chain there (backing paths rewritten with\n" +
        '`qemu-img rebase -u` when the folder moved), checks it, and writes a definition from the\n' +
        '<domain>-inactive.xml config dump that runs each disk from its top frozen layer.\n' +
        'Never overwrites a file or a defined domain.',
    )
    .argument('<domain>', 'the domain name the backup was made of')
    .requiredOption(
      '--from <source>',
      "'restic' (latest snapshot of the domain), 'restic:SNAPSHOT', or a folder",
    )
    .option('--to <dir>', 'where the files go (default: the original folder)')
    .option('--as <name>', 'a new name, with a new UUID and new MAC addresses, to run beside the original')
    .option('--define', 'define the restored domain in libvirt')
    .option('--start', 'define and start the restored domain')
    .addOption(configOption())
    .action(async (domain: string, options: RestoreOptions, command: Command) => {
      const global = globalOptions(command);
      if (global.dryRun) throw new UsageError('restore has no --dry-run; it never overwrites anything');
      const ctx = opsContext(global);
      const { parseFrom, restoreDomain } = await import('../../ops/restore.js');
      const from = parseFrom(options.from);
      const source =
        from.kind === 'dir'
          ? from
          : {
              kind: 'restic' as const,
              restic: (await repository(options.config, ctx.host.runner)).restic,
              ...(from.snapshot === undefined ? {} : { snapshot: from.snapshot }),
            };
      const result = await restoreDomain(ctx, domain, {
        source,
        ...(options.to === undefined ? {} : { to: options.to }),
        ...(options.as === undefined ? {} : { as: options.as }),
        define: options.define === true,
        start: options.start === true,
      });
      report([{ domain, status: 'ok', value: result }], { json: global.json, all: false }, restoreLines);
    });
}
