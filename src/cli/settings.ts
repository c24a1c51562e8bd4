import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import type { Config } from '../config/config.js';
import { defaultConfigFile } from '../config/location.js';
import type { LogFormat } from './log.js';
import { configureLog, log } from './log.js';

/**
 * Config-file keys that are defaults for options: `option` is the commander attribute, `env` the
 * variable that already feeds the option's default (it beats the file: flag > env > file > built-in).
 */
const fromConfig = [
  { key: 'connect', option: 'connect', env: 'LIBVIRT_DEFAULT_URI' },
  { key: 'lock-dir', option: 'lockDir', env: 'UNIFI_BACKUP_LOCK_DIR' },
  { key: 'state-dir', option: 'stateDir', env: 'UNIFI_BACKUP_STATE_DIR' },
  { key: 'max-incr', option: 'maxIncr', env: 'UNIFI_BACKUP_MAX_INCR' },
] as const;

/** Commands that read (or do not need) the config file themselves: a broken file must not stop them. */
const standalone = new Set(['config', 'completion', 'manpage', 'help']);

/** Commands whose --config names their own file (notify.yaml), not config.yaml. */
const ownConfigFile = new Set(['notify']);

function commandPath(command: Command): string[] {
  const names: string[] = [];
  for (let c: Command | null = command; c.parent; c = c.parent) names.unshift(c.name());
  return names;
}

/** Whichever command along the path defines `option` (global options live on the program). */
function owner(command: Command, option: string): Command | undefined {
  for (let c: Command | null = command; c; c = c.parent)
    if (c.options.some((o) => o.attributeName() === option)) return c;
  return undefined;
}

/** Sets each option the user left at its built-in default to the config file's value. */
export function applyConfigDefaults(command: Command, config: Config, env: NodeJS.ProcessEnv): void {
  for (const { key, option, env: variable } of fromConfig) {
    const value = config[key];
    if (value === undefined || (env[variable] ?? '') !== '') continue;
    const target = owner(command, option);
    if (target === undefined) continue;
    const source = target.getOptionValueSource(option);
    if (source === undefined || source === 'default')
      target.setOptionValueWithSource(option, value, 'config');
  }
}

const loaded = new WeakMap<Command, Config>();

/** The config file as the preAction hook loaded it for this command (undefined for standalone ones). */
export function configOf(command: Command): Config | undefined {
  return loaded.get(command);
}

const loadedFiles = new Map<string, Promise<{ file: string; config: Config }>>();

/**
 * The config file, read once per invocation: the hook and the verbs that need the repository share
 * it, so its warnings go through the logger (JSON under --log-format json) once.
 */
export function loadConfigOnce(file: string | undefined): Promise<{ file: string; config: Config }> {
  const key = file ?? '';
  let loading = loadedFiles.get(key);
  if (loading === undefined) {
    loading = import('../config/config.js').then(({ loadConfig }) =>
      loadConfig(file, (line) => {
        log.warn(line);
      }),
    );
    loadedFiles.set(key, loading);
  }
  return loading;
}

/** The program's preAction hook: log format first (so config problems are logged in it), then the file. */
export async function settingsHook(program: Command, action: Command): Promise<void> {
  configureLog(program.opts<{ logFormat?: LogFormat }>().logFormat);
  if (standalone.has(commandPath(action)[0] ?? '')) return;
  const flag = ownConfigFile.has(commandPath(action)[0] ?? '')
    ? undefined
    : action.opts<{ config?: string }>().config;
  const file = flag ?? process.env.UNIFI_BACKUP_CONFIG;
  // Without a config file, the YAML parser and the schema are never loaded (start-up and memory).
  if (file === undefined && !existsSync(defaultConfigFile)) return;
  const { config } = await loadConfigOnce(file);
  loaded.set(action, config);
  applyConfigDefaults(action, config, process.env);
}
