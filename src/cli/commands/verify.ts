import { Command } from 'commander';
import { forEachDomain } from '../../ops/all.js';
import type { VerifyReport } from '../../ops/verify.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';
import { configOption, repository } from '../repository.js';

export function verifyLines(result: VerifyReport): string[] {
  return [
    `${result.domain}: ${result.problems.length === 0 ? 'verified' : `${result.problems.length} problems`}`,
    ...result.passed.map((line) => `  ok       ${line}`),
    ...result.problems.map((line) => `  PROBLEM  ${line.replaceAll('\n', '\n           ')}`),
  ];
}

export function verifyCommand(): Command {
  return new Command('verify')
    .summary("check a domain's chains and config dumps; --restic: the repository and latest snapshot too")
    .description(
      '`qemu-img check` of every frozen layer, every backing file present with the recorded format and a ' +
        'sane virtual size, config dumps parse. With --restic: `restic check`, and the latest snapshot of the ' +
        'domain holds every frozen layer of the current chain. Exits 1 when a problem was found.',
    )
    .argument('<domain>', "domain name, or 'all'")
    .option('--restic', 'also check the restic repository and the latest snapshot of the domain')
    .option(
      '--host <name>',
      "with --restic: the latest snapshot of this host (default: restic.host or this machine's name)",
    )
    .addOption(configOption())
    .action(
      async (
        domain: string,
        options: { restic?: boolean; host?: string; config?: string },
        command: Command,
      ) => {
        const global = globalOptions(command);
        const ctx = opsContext(global);
        const { verifyDomain, VerifyFailedError } = await import('../../ops/verify.js');
        const { recordRuns } = await import('../../ops/run-record.js');
        const repo = options.restic === true ? await repository(options.config, ctx.host.runner) : undefined;
        const host = options.host ?? repo?.settings.host;
        const details = (r: VerifyReport) => ({
          failed: r.problems.length > 0,
          ...(r.problems[0] === undefined ? {} : { error: r.problems[0] }),
        });
        const outcomes = await forEachDomain(
          ctx,
          domain,
          recordRuns(
            ctx,
            'verify',
            options.restic === true ? 'restic' : 'chain',
            (name) =>
              verifyDomain(
                ctx,
                name,
                repo === undefined ? {} : { restic: repo.restic, ...(host === undefined ? {} : { host }) },
              ),
            details,
          ),
        );
        report(outcomes, { json: global.json, all: domain === 'all' }, verifyLines);
        const failed = outcomes.flatMap((o) =>
          o.status === 'ok' && o.value.problems.length > 0 ? [o.value] : [],
        );
        if (failed.length > 0)
          throw new VerifyFailedError(
            `verify found problems in ${failed.map((r) => `domain '${r.domain}' (${r.problems.length})`).join(', ')}. ` +
              'Fix what is listed above; a damaged chain can be restored with: unifi-backup restore DOMAIN --from restic --as NEWNAME',
          );
      },
    );
}
