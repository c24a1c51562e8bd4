import type { CommandDefinition, OptionDefinition } from './definitions.js';
import { allCommands } from './definitions.js';

/** Text as roff: backslashes and hyphens escaped, `code` in bold, no line taken for a request. */
function roff(text: string): string {
  return text
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .replace(/`([^`]+)`/g, '\\fB$1\\fR')
    .replace(
      /[^\p{ASCII}]/gu,
      (c) => `\\[u${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}]`,
    )
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n');
}

function optionItem(option: OptionDefinition): string[] {
  const extra = [
    option.value?.kind === 'words' ? `one of: ${option.value.words.join(', ')}` : '',
    option.defaultValue === undefined ? '' : `default: ${option.defaultValue}`,
    option.env === undefined ? '' : `env: ${option.env}`,
  ].filter((t) => t !== '');
  return [
    '.TP',
    `.B ${roff(option.flags)}`,
    roff(option.description) + (extra.length > 0 ? ` (${roff(extra.join('; '))})` : ''),
  ];
}

function commandSection(command: CommandDefinition): string[] {
  const name = ['unifi-backup', ...command.path].join(' ');
  const lines = [`.SS "${roff(name)} ${roff(command.usage)}"`];
  if (command.aliases.length > 0) lines.push(`Also: ${roff(command.aliases.join(', '))}.`, '.br');
  lines.push(roff(command.description || command.summary));
  for (const argument of command.arguments)
    if (argument.description !== '')
      lines.push(
        '.TP',
        `.I ${roff(argument.name)}${argument.variadic ? '...' : ''}`,
        roff(argument.description),
      );
  for (const option of command.options.filter((o) => !o.names.includes('--help')))
    lines.push(...optionItem(option));
  return lines;
}

const environment: readonly (readonly [string, string])[] = [
  ['LIBVIRT_DEFAULT_URI', 'default for --connect'],
  ['UNIFI_BACKUP_CONFIG', 'the config file (default /etc/unifi-backup/config.yaml)'],
  ['UNIFI_BACKUP_LOCK_DIR', 'default for --lock-dir'],
  ['UNIFI_BACKUP_STATE_DIR', 'default for --state-dir'],
  ['UNIFI_BACKUP_MAX_INCR', 'default for --max-incr'],
  [
    'RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE, …',
    'restic’s own settings, used when the config file has no restic: section',
  ],
  ['NO_COLOR', 'no colours in the output'],
  ['JOURNAL_STREAM, INVOCATION_ID', 'set by systemd: log lines get sd-daemon priority prefixes'],
];

/**
 * unifi-backup(1), written from the program's own definitions: every command with an action
 * gets its usage, description, arguments and options, so the page cannot drift from the parser.
 */
export function manPage(root: CommandDefinition, meta: { version: string; date: string }): string {
  const commands = allCommands(root).filter(
    (c) => c.path.length > 0 && (c.subcommands.length === 0 || c.arguments.length > 0),
  );
  const lines = [
    `.TH UNIFI\\-BACKUP 1 "${meta.date}" "unifi\\-backup ${roff(meta.version)}" "User Commands"`,
    '.SH NAME',
    `unifi\\-backup \\- ${roff(root.description.split(':')[0] ?? '')}`,
    '.SH SYNOPSIS',
    '.B unifi\\-backup',
    '[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIsubcommand\\fR] [\\fIoptions\\fR] \\fIdomain\\fR|\\fBall\\fR',
    '.br',
    '.B unifi\\-backup',
    '\\-a \\fIaction\\fR \\-m \\fImode\\fR [\\-q] [\\-s \\fIdir\\fR] [\\-p] [\\-d] [\\-v] \\fIdomain\\fR',
    '.SH DESCRIPTION',
    roff(root.description),
    '.PP',
    roff(
      'The second form is the command line of the original unifi-backup.sh script; it is translated ' +
        'to the first (for example `-a backup -m incr -q` is `backup incr --quiesce`).',
    ),
    '.SH GLOBAL OPTIONS',
    'Valid before or after the command.',
    ...root.options.flatMap(optionItem),
    '.SH COMMANDS',
    ...commands.flatMap(commandSection),
    '.SH FILES',
    '.TP',
    '.I /etc/unifi\\-backup/config.yaml',
    roff(
      'Optional config file; check it with `unifi-backup config check`, see `unifi-backup config example`.',
    ),
    '.TP',
    '.I /var/lib/unifi\\-backup/',
    'Journals and state (\\-\\-state\\-dir).',
    '.TP',
    '.I /run/unifi\\-backup/',
    "Per\\-domain locks (\\-\\-lock\\-dir); it and the state folder must be root's alone (0700).",
    '.SH ENVIRONMENT',
    ...environment.flatMap(([name, text]) => ['.TP', `.B ${roff(name)}`, roff(text)]),
    '.SH EXIT STATUS',
    '.TP',
    '.B 0',
    'success',
    '.TP',
    '.B 1',
    'failed',
    '.TP',
    '.B 2',
    'usage error (bad flags, arguments or config file)',
    '.TP',
    '.B 3',
    'domain busy (locked by another run, or in maintenance)',
    '.TP',
    '.B 4',
    'some domains of \\fBall\\fR failed',
    '.SH SEE ALSO',
    '.BR virsh (1),',
    '.BR qemu\\-img (1),',
    '.BR restic (1),',
    '.BR systemd.timer (5)',
  ];
  return `${lines.join('\n')}\n`;
}
