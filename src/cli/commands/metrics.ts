import path from 'node:path';
import { Command } from 'commander';
import { SomeFailedError, UsageError } from '../../errors.js';
import { log } from '../log.js';
import { configOption } from '../repository.js';
import type { StatusOptions } from './status.js';
import { collectStatuses } from './status.js';

declare const __VERSION__: string;

export function metricsCommand(): Command {
  return new Command('metrics')
    .summary("every domain's status as Prometheus metrics (for node_exporter's textfile collector)")
    .description(
      'Prints the Prometheus text exposition of what `status` knows: last success per level, last run of ' +
        'each verb with its result and duration, bytes added, chain lengths and bytes, maintenance, ' +
        'pending journals, the verdict and the version. --output FILE replaces FILE atomically (mode 0644), ' +
        'for node_exporter --collector.textfile.directory. Exits 4 after writing when a domain could not be read.',
    )
    .argument('[domains...]', "domain names, or 'all' (the default)")
    .option('--output <file>', 'write to FILE (atomically) instead of stdout; name it *.prom')
    .option('--restic', 'also the time of the newest restic snapshot of each domain')
    .option('--host <name>', "with --restic: another host's snapshots")
    .addOption(configOption())
    .action(async (names: string[], options: StatusOptions & { output?: string }, command: Command) => {
      const output = options.output;
      if (output !== undefined && !output.endsWith('.prom'))
        throw new UsageError(`--output ${output}: node_exporter reads only files named *.prom; name it so`);
      const outcomes = await collectStatuses(command, names, options);
      const { renderMetrics } = await import('../../ops/metrics.js');
      const text = renderMetrics(outcomes, __VERSION__);
      if (output === undefined) process.stdout.write(text);
      else {
        const { writeStateFile } = await import('../../state/write.js');
        writeStateFile(path.resolve(output), text, 0o644);
      }
      const failed = outcomes.flatMap((o) => (o.status === 'failed' ? [o] : []));
      for (const o of failed) log.error(o.error.message, o.domain);
      if (failed.length > 0)
        throw new SomeFailedError(
          `${failed.length} of ${outcomes.length} domains could not be read (unifi_backup_domain_readable 0): ` +
            failed.map((o) => o.domain).join(', '),
        );
    });
}
