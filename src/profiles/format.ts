import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../errors.js';
import { mergeConfig, toConfig } from './config.js';
import type { ConfigObject, ConfigVersion } from './config.js';
import type { ProfileSet } from './model.js';
import { renderYaml } from './yaml.js';

export const configFormats = ['yaml', 'toml', 'json'] as const;
export type ConfigFormat = (typeof configFormats)[number];

/** The format a file name implies (resticprofile chooses its parser by extension too). */
export function formatFromPath(path: string): ConfigFormat | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return 'yaml';
  if (lower.endsWith('.toml') || lower.endsWith('.conf')) return 'toml';
  if (lower.endsWith('.json')) return 'json';
  return undefined;
}

export function parseConfigText(text: string, format: ConfigFormat, file: string): ConfigObject {
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = format === 'yaml' ? parseYaml(text) : format === 'toml' ? parseToml(text) : JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${file} is not valid ${format.toUpperCase()}: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`${file} is not a resticprofile configuration (not a mapping).`);
  }
  return parsed as ConfigObject;
}

export interface RenderedConfig {
  readonly text: string;
  /** Things the user should know, e.g. that TOML comments were not kept. */
  readonly notes: string[];
}

/** The file text for a profile set, added to the existing text of the file when there is one. */
export function renderConfig(
  set: ProfileSet,
  version: ConfigVersion,
  format: ConfigFormat,
  existing?: string,
  file = 'the file',
): RenderedConfig {
  if (format === 'yaml') return { text: renderYaml(set, version, existing, file), notes: [] };
  const config =
    existing === undefined || existing.trim() === ''
      ? toConfig(set, version)
      : mergeConfig(parseConfigText(existing, format, file), set, version, file);
  const notes =
    format === 'toml' && existing !== undefined && /^\s*#/m.test(existing)
      ? [`${file}: comments are not kept when a TOML file is rewritten; use YAML to keep them.`]
      : [];
  const text = format === 'toml' ? `${stringifyToml(config)}\n` : `${JSON.stringify(config, null, 2)}\n`;
  return { text, notes };
}
