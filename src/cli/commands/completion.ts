import { Argument, Command } from 'commander';
import type { CompletionShell } from '../completion.js';
import { completionScript, completionShells } from '../completion.js';
import { commandDefinitions, rootOf } from '../definitions.js';

export function completionCommand(): Command {
  return new Command('completion')
    .summary('print the shell completion script for bash or zsh')
    .description(
      'Prints a completion script for verbs, subcommands, levels, flags and domain names ' +
        '(read from `virsh list --all --name` when you press TAB).\n' +
        '  bash: unifi-backup completion bash > /etc/bash_completion.d/unifi-backup\n' +
        '  zsh:  add  source <(unifi-backup completion zsh)  to ~/.zshrc',
    )
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(completionShells))
    .action((shell: CompletionShell, _options: unknown, command: Command) => {
      process.stdout.write(completionScript(shell, commandDefinitions(rootOf(command))));
    });
}
