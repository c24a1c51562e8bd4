import { Argument, Command, Option } from 'commander';

/** A program of the same shape as unifi-backup's: global options, verbs, sub-verbs, an alias, levels. */
export function fixtureProgram(): Command {
  const domain = (c: Command) => c.argument('<domain>', "domain name, or 'all'");
  const backup = new Command('backup').summary('prepare domains for backup');
  for (const level of ['incr', 'diff'])
    backup.addCommand(
      domain(new Command(level).summary(`a ${level} layer`))
        .option('-q, --quiesce', 'freeze guest filesystems')
        .option('-s, --memory-state <dir>', 'save the memory state into DIR'),
    );
  backup.addCommand(domain(new Command('showchain').alias('sc').summary("print each disk's chain")));
  return new Command('unifi-backup')
    .description('Back up running domains: frozen layers.\nSecond line.')
    .addOption(new Option('-c, --connect <uri>', 'libvirt connection URI').default('qemu:///system'))
    .option('--lock-dir <dir>', 'where locks live')
    .addOption(new Option('--log-format <format>', 'human or JSON lines').choices(['human', 'json']))
    .addCommand(backup)
    .addCommand(
      new Command('run')
        .summary('prepare, restic, retention')
        .addArgument(new Argument('<level>', 'incr, diff or full').choices(['incr', 'diff', 'full']))
        .argument('<domain>', "domain name, or 'all'")
        .addOption(new Option('--config <file>', 'config file').env('UNIFI_BACKUP_CONFIG')),
    )
    .addCommand(new Command('generate').argument('<domain...>', 'domains to schedule'))
    .addCommand(
      new Command('secret').action(() => undefined),
      { hidden: true },
    );
}
