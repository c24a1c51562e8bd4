import { Command } from 'commander';
import { commandDefinitions, rootOf } from '../definitions.js';
import { manPage } from '../manpage.js';

declare const __VERSION__: string;

/** Hidden: the build writes dist/unifi-backup.1 with it; `unifi-backup manpage | man -l -` reads it. */
export function manpageCommand(): Command {
  return new Command('manpage')
    .summary('print the unifi-backup(1) man page (roff)')
    .action((_options: unknown, command: Command) => {
      const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? Date.now() / 1000);
      const date = new Date(epoch * 1000).toISOString().slice(0, 10);
      process.stdout.write(manPage(commandDefinitions(rootOf(command)), { version: __VERSION__, date }));
    });
}
