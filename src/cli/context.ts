import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { createHost } from '../host/host.js';
import type { Runner } from '../host/runner.js';
import { programRunner } from '../host/runner.js';
import type { Timeouts } from '../host/timeouts.js';
import { timeoutsFromConfig } from '../host/timeouts.js';
import type { OpsContext } from '../ops/context.js';
import { log as logger } from './log.js';
import { progressReporter } from './progress.js';
import { configOf } from './settings.js';

/** Options every command understands (defined on the program, valid before or after the verb). */
export interface GlobalOptions {
  connect: string;
  json: boolean;
  dryRun: boolean;
  lockDir: string;
  stateDir: string;
  debug: boolean;
  verbose: boolean;
  jobs: number;
  /** From config.yaml's `timeouts:` section (there are no flags for them). */
  timeouts: Timeouts;
}

export function globalOptions(command: Command): GlobalOptions {
  return {
    ...command.optsWithGlobals<Omit<GlobalOptions, 'timeouts'>>(),
    timeouts: timeoutsFromConfig(configOf(command)?.timeouts),
  };
}

function quoteForLog(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** With --debug every program run is echoed (as a copy-pasteable line) before it starts. */
function debugRunner(inner: Runner, log: (line: string) => void): Runner {
  return async (request) => {
    const stdin = request.inputFile === undefined ? '' : ` < ${quoteForLog(request.inputFile)}`;
    log(`+ ${request.argv.map(quoteForLog).join(' ')}${stdin}`);
    const result = await inner(request);
    if (result.exitCode !== 0) log(`  exit ${result.exitCode}: ${result.stderr.trim()}`);
    return result;
  };
}

export function opsContext(options: GlobalOptions): OpsContext {
  const log = (line: string) => {
    logger.info(line);
  };
  const debug = (line: string) => {
    logger.debug(line);
  };
  const runner = options.debug ? debugRunner(programRunner, debug) : programRunner;
  return {
    host: createHost(options.connect, runner, options.timeouts, options.debug ? { log: debug } : {}),
    lockDir: options.lockDir,
    stateDir: options.stateDir,
    dryRun: options.dryRun,
    log,
    // Bars redrawn with \r would overwrite each other when domains run side by side.
    progress: progressReporter(options.json, process.stderr, options.jobs === 1 && process.stderr.isTTY),
    now: () => new Date(),
    jobs: options.jobs,
  };
}

/** The folder of a domain's first disk: what `generate` backs up when `--source` is not given. */
export function domainFolderLookup(options: GlobalOptions): (domain: string) => Promise<string> {
  return async (domain) => {
    const { readDomainState, domainFolder } = await import('../ops/state.js');
    const folder = domainFolder(await readDomainState(opsContext(options).host, domain));
    if (folder === undefined)
      throw new UserError(
        `domain '${domain}' has no qcow2 or raw file disk, so it has no folder to back up; give --source DIR.`,
      );
    return folder;
  };
}
