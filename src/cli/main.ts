import { Command, CommanderError, Option } from 'commander';
import { ExitCode, UserError } from '../errors.js';
import { defaultLockDir } from '../lock/lock.js';
import { backupCommand, filesCommand, showChainCommand } from './commands/backup.js';
import { generateCommand } from './commands/generate.js';
import { scheduleCommand } from './commands/schedule.js';
import { maintenanceCommand } from './commands/maintenance.js';
import { metricsCommand } from './commands/metrics.js';
import { notifyCommand } from './commands/notify.js';
import { syncCommand } from './commands/sync.js';
import { repairCommand } from './commands/repair.js';
import { restoreCommand } from './commands/restore.js';
import { mountCommand, unmountCommand } from './commands/mount.js';
import { statusCommand } from './commands/status.js';
import { runCommand } from './commands/run.js';
import { verifyCommand } from './commands/verify.js';
import { completionCommand } from './commands/completion.js';
import { configCommand } from './commands/config.js';
import { manpageCommand } from './commands/manpage.js';
import { configureLog, log, logFormats } from './log.js';
import type { LogFormat } from './log.js';
import { settingsHook } from './settings.js';
import { isSeedInvocation, translateSeedArgs } from './seed.js';
import { wholeNumber } from './options.js';
import { defaultConnection } from './connection.js';

declare const __VERSION__: string;

export function buildProgram(): Command {
  const program = new Command('unifi-backup')
    .description(
      'Back up running libvirt/KVM domains safely: external qcow2 snapshots freeze disk state, ' +
        'a backup program (restic) reads only the frozen layers.',
    )
    .version(__VERSION__, '-V, --version', 'print the version and exit');
  addGlobalOptions(program).hook('preAction', settingsHook).showHelpAfterError('(add --help for usage)');
  for (const command of verbCommands()) program.addCommand(command);
  return program
    .addCommand(manpageCommand(), { hidden: true })
    .addHelpText(
      'after',
      "\nThe original script's form keeps working: unifi-backup -a backup -m incr [-q] [-p] [-d] [-v] DOMAIN\n" +
        "Exit codes: 0 ok, 1 failed, 2 usage error, 3 domain busy, 4 some domains of 'all' failed.",
    );
}

function addGlobalOptions(program: Command): Command {
  const env = process.env;
  return program
    .addOption(new Option('-c, --connect <uri>', 'libvirt connection URI').default(defaultConnection(env)))
    .option('--json', 'machine-readable output', false)
    .option('--dry-run', 'print the plan and change nothing', false)
    .addOption(
      new Option('--lock-dir <dir>', 'where per-domain locks live').default(
        env.UNIFI_BACKUP_LOCK_DIR ?? defaultLockDir,
      ),
    )
    .addOption(
      new Option('--state-dir <dir>', 'where journals and state live').default(
        env.UNIFI_BACKUP_STATE_DIR ?? '/var/lib/unifi-backup',
      ),
    )
    .addOption(
      new Option('-j, --jobs <n>', "with 'all', how many domains run at once (each under its own lock)")
        .argParser((value) => wholeNumber('--jobs', value, 1))
        .env('UNIFI_BACKUP_JOBS')
        .default(1),
    )
    .option('--debug', 'print every program run and every call to libvirt (seed: -d)', false)
    .option('--verbose', 'more detail (seed: -v)', false)
    .addOption(
      new Option('--log-format <format>', 'messages on stderr: human lines or JSON lines').choices(
        logFormats,
      ),
    );
}

/** The verbs, in the order help lists them. */
function verbCommands(): Command[] {
  return [
    backupCommand(),
    showChainCommand('chain'),
    filesCommand(),
    maintenanceCommand(),
    notifyCommand(),
    generateCommand(),
    scheduleCommand(),
    syncCommand(),
    runCommand(),
    restoreCommand(),
    mountCommand(),
    unmountCommand(),
    verifyCommand(),
    repairCommand(),
    statusCommand(),
    metricsCommand(),
    configCommand(),
    completionCommand(),
  ];
}

function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : ExitCode.usage;
  if (error instanceof UserError) return error.exitCode;
  return ExitCode.failed;
}

/** The one place errors become messages and exit codes (STYLE: changesets). */
export async function main(argv: readonly string[]): Promise<number> {
  // `unifi-backup files all | head` closes our stdout early: that is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(ExitCode.ok);
    throw error;
  });
  const program = buildProgram();
  program.exitOverride();
  // Every level, so `backup incr --bad` is a usage error (exit 2) like `backup --bad`.
  const override = (command: Command): void => {
    for (const sub of command.commands) {
      sub.exitOverride().showHelpAfterError('(add --help for usage)');
      override(sub);
    }
  };
  override(program);
  try {
    const args = isSeedInvocation(argv) ? translateSeedArgs(argv) : [...argv];
    await program.parseAsync(args, { from: 'user' });
    return ExitCode.ok;
  } catch (error) {
    const code = exitCodeOf(error);
    if (error instanceof CommanderError) return code; // commander already printed it
    const message =
      error instanceof UserError
        ? error.message
        : `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    configureLog(program.opts<{ logFormat?: LogFormat }>().logFormat);
    log.error(message);
    return code;
  }
}
