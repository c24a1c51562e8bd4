import { UsageError } from '../errors.js';
import type { Group, Profile, ProfileSet } from './model.js';

/** resticprofile configuration format: 1 (profiles at the top) or 2 (under `profiles:`). */
export type ConfigVersion = '1' | '2';

export type ConfigObject = Record<string, unknown>;

/** Top-level keys of a version 1 file that are not profiles. */
const v1Reserved = new Set(['version', 'global', 'groups', 'includes']);

function isObject(value: unknown): value is ConfigObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One failing domain of a group does not stop the others (a file's own `global` is kept as it is). */
export const generatedGlobal = { 'group-continue-on-error': true } as const;

/** The configuration object of a profile set in the given format version. */
export function toConfig(set: ProfileSet, version: ConfigVersion): ConfigObject {
  if (version === '1') {
    const groups = Object.fromEntries(
      Object.entries(set.groups).map(([name, group]) => [name, group.profiles]),
    );
    return { version: '1', global: generatedGlobal, ...set.profiles, groups };
  }
  return { version: '2', global: generatedGlobal, profiles: set.profiles, groups: set.groups };
}

/** The version a parsed file declares; files without `version` are version 1. */
export function configVersion(config: ConfigObject, file: string): ConfigVersion {
  const declared = config.version;
  if (declared === undefined) return '1';
  const text = typeof declared === 'number' || typeof declared === 'string' ? String(declared) : '';
  if (text === '1' || text === '2') return text;
  throw new UsageError(`${file}: unknown resticprofile configuration version ${JSON.stringify(declared)}.`);
}

function groupMembers(value: unknown): string[] {
  const list = isObject(value) ? value.profiles : value;
  return Array.isArray(list) ? list.filter((item): item is string => typeof item === 'string') : [];
}

/** The profiles and groups of a parsed file (the inverse of {@link toConfig}). */
export function fromConfig(config: ConfigObject, file: string): ProfileSet {
  const version = configVersion(config, file);
  const profiles: Record<string, Profile> = {};
  const source = version === '1' ? config : isObject(config.profiles) ? config.profiles : {};
  for (const [name, body] of Object.entries(source)) {
    if (version === '1' && v1Reserved.has(name)) continue;
    if (isObject(body)) profiles[name] = body as unknown as Profile;
  }
  const groups: Record<string, Group> = {};
  if (isObject(config.groups)) {
    for (const [name, value] of Object.entries(config.groups)) {
      const schedules = isObject(value) && isObject(value.schedules) ? value.schedules : undefined;
      groups[name] = {
        profiles: groupMembers(value),
        ...(schedules === undefined ? {} : { schedules: schedules as unknown as Group['schedules'] }),
      };
    }
  }
  return { profiles, groups };
}

function isScheduleKey(key: string): boolean {
  return key === 'schedule' || key.startsWith('schedule-');
}

/**
 * Re-running into an existing file changes only what was asked: a generated profile (or version 2
 * group) whose level got no schedule this time keeps the schedule the file already gives it (pure).
 */
export function keepExistingSchedules(generated: ProfileSet, existing: ProfileSet): ProfileSet {
  const profiles: Record<string, Profile> = {};
  for (const [name, profile] of Object.entries(generated.profiles)) {
    const before = existing.profiles[name]?.backup;
    const backup = profile.backup;
    if (backup === undefined || 'schedule' in backup || !isObject(before) || before.schedule === undefined) {
      profiles[name] = profile;
      continue;
    }
    // Where the generator puts schedules (before the hooks), so a diff shows only what changed.
    const entries = Object.entries(backup);
    const at = entries.findIndex(([key]) => key === 'run-before');
    entries.splice(
      at < 0 ? entries.length : at,
      0,
      ...Object.entries(before).filter(([key]) => isScheduleKey(key)),
    );
    profiles[name] = { ...profile, backup: Object.fromEntries(entries) };
  }
  const groups: Record<string, Group> = {};
  for (const [name, group] of Object.entries(generated.groups)) {
    const before = existing.groups[name]?.schedules;
    groups[name] =
      group.schedules === undefined && before !== undefined ? { ...group, schedules: before } : group;
  }
  return { profiles, groups };
}

export function requireSameVersion(existing: ConfigObject, version: ConfigVersion, file: string): void {
  const found = configVersion(existing, file);
  if (found !== version) {
    throw new UsageError(
      `${file} is a resticprofile version ${found} configuration; generate with --config-version ${found} to add to it.`,
    );
  }
}

/**
 * Adds a profile set to an existing configuration object: a profile of the same name is replaced,
 * group members are added once, everything else is kept as it was.
 */
export function mergeConfig(
  existing: ConfigObject,
  set: ProfileSet,
  version: ConfigVersion,
  file: string,
): ConfigObject {
  if (Object.keys(existing).length === 0) return toConfig(set, version);
  requireSameVersion(existing, version, file);
  const merged: ConfigObject = { ...existing };
  merged.global ??= generatedGlobal;
  if (version === '1') {
    Object.assign(merged, set.profiles);
  } else {
    merged.profiles = { ...(isObject(existing.profiles) ? existing.profiles : {}), ...set.profiles };
  }
  const groups: ConfigObject = isObject(existing.groups) ? { ...existing.groups } : {};
  for (const [name, group] of Object.entries(set.groups)) {
    const union = [...new Set([...groupMembers(groups[name]), ...group.profiles])];
    groups[name] =
      version === '1'
        ? union
        : {
            ...(isObject(groups[name]) ? groups[name] : {}),
            profiles: union,
            ...(group.schedules === undefined ? {} : { schedules: group.schedules }),
          };
  }
  // Keep groups after the profiles, where a reader of a version 1 file expects them.
  delete merged.groups;
  merged.groups = groups;
  return merged;
}
