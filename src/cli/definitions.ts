import type { Argument, Command, Option } from 'commander';
import { Help } from 'commander';

/** What a value on the command line is, as far as completion and the man page care. */
export type ValueKind =
  | { readonly kind: 'domain' }
  | { readonly kind: 'file' }
  | { readonly kind: 'dir' }
  | { readonly kind: 'words'; readonly words: readonly string[] }
  | { readonly kind: 'text' };

export interface OptionDefinition {
  /** `-c`, `--connect`: how it is typed. */
  readonly names: readonly string[];
  readonly flags: string;
  readonly description: string;
  /** undefined: a switch, takes no value */
  readonly value?: ValueKind;
  readonly defaultValue?: string;
  readonly env?: string;
}

export interface ArgumentDefinition {
  readonly name: string;
  readonly description: string;
  readonly required: boolean;
  readonly variadic: boolean;
  readonly value: ValueKind;
}

export interface CommandDefinition {
  /** names from the program down, without the program's own: `['backup', 'incr']` */
  readonly path: readonly string[];
  readonly aliases: readonly string[];
  readonly usage: string;
  readonly summary: string;
  readonly description: string;
  readonly options: readonly OptionDefinition[];
  readonly arguments: readonly ArgumentDefinition[];
  readonly subcommands: readonly CommandDefinition[];
}

function valueKind(name: string, choices: readonly string[] | undefined): ValueKind {
  if (choices !== undefined && choices.length > 0) return { kind: 'words', words: choices };
  if (/domain/i.test(name)) return { kind: 'domain' };
  if (/dir|target/i.test(name)) return { kind: 'dir' };
  if (/file|path/i.test(name)) return { kind: 'file' };
  return { kind: 'text' };
}

function optionDefinition(option: Option): OptionDefinition {
  const names = [option.short, option.long].filter((n): n is string => n !== undefined);
  const placeholder = /[<[]([^>\]]+)[>\]]/.exec(option.flags)?.[1] ?? '';
  const takesValue = option.required || option.optional;
  const defaultValue: unknown = option.defaultValue;
  return {
    names,
    flags: option.flags,
    description: option.description,
    ...(takesValue ? { value: valueKind(placeholder, option.argChoices) } : {}),
    ...(typeof defaultValue === 'string' || typeof defaultValue === 'number'
      ? { defaultValue: String(defaultValue) }
      : {}),
    ...(option.envVar === undefined ? {} : { env: option.envVar }),
  };
}

function argumentDefinition(argument: Argument): ArgumentDefinition {
  return {
    name: argument.name(),
    description: argument.description,
    required: argument.required,
    variadic: argument.variadic,
    value: valueKind(argument.name(), argument.argChoices),
  };
}

/**
 * The command tree as data, read from the commander program itself, so completion and the man
 * page can never drift from what the parser accepts. Hidden commands and options are left out.
 */
export function commandDefinitions(command: Command, path: readonly string[] = []): CommandDefinition {
  const help = new Help();
  return {
    path,
    aliases: command.aliases(),
    usage: command.usage(),
    summary: command.summary() || (command.description().split('\n')[0] ?? ''),
    description: command.description(),
    options: help.visibleOptions(command).map(optionDefinition),
    arguments: command.registeredArguments.map(argumentDefinition),
    subcommands: help
      .visibleCommands(command)
      .filter((sub) => sub.name() !== 'help')
      .map((sub) => commandDefinitions(sub, [...path, sub.name()])),
  };
}

/** Every command of the tree, depth first, the program itself first. */
export function allCommands(root: CommandDefinition): CommandDefinition[] {
  return [root, ...root.subcommands.flatMap(allCommands)];
}

/** The program a command belongs to. */
export function rootOf(command: Command): Command {
  let root = command;
  while (root.parent) root = root.parent;
  return root;
}
