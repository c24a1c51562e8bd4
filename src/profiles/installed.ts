import { fromConfig } from './config.js';
import type { ConfigObject } from './config.js';
import { levels } from './model.js';
import type { ScheduledLevel } from './model.js';

/** One scheduled backup found on the host: a systemd timer or a resticprofile profile. */
export interface InstalledSchedule {
  readonly domain: string;
  readonly level: ScheduledLevel;
  readonly schedules: readonly string[];
  readonly from: 'systemd' | 'resticprofile';
  /** The timer unit, or the profile's name. */
  readonly name: string;
  /** The unit file or profile file it was read from. */
  readonly file: string;
  /** resticprofile's `status-file` for the profile, when it names one. */
  readonly statusFile?: string;
}

function isLevel(value: unknown): value is ScheduledLevel {
  return levels.some((level) => level === value);
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** resticprofile writes `$$` for a literal dollar sign in the paths it expands. */
function unescapedPath(value: unknown): string | undefined {
  return typeof value === 'string' ? value.replaceAll('$$', '$') : undefined;
}

/**
 * The unifi-backup profiles of a parsed resticprofile file (pure): those tagged `<domain>, kvm,
 * <level>` as `generate` writes them, with their own schedule (version 1) or their group's (version 2).
 */
export function profileSchedules(config: ConfigObject, file: string): InstalledSchedule[] {
  const set = fromConfig(config, file);
  const groupTimes = new Map<string, string[]>();
  for (const group of Object.values(set.groups)) {
    const at = strings(record(record(group.schedules)?.backup)?.at);
    for (const member of group.profiles) groupTimes.set(member, [...(groupTimes.get(member) ?? []), ...at]);
  }
  const found: InstalledSchedule[] = [];
  for (const [name, profile] of Object.entries(set.profiles)) {
    const backup = record(profile.backup);
    const [domain, kind, level] = strings(backup?.tag);
    if (domain === undefined || kind !== 'kvm' || !isLevel(level)) continue;
    const schedules = [...strings(backup?.schedule), ...(groupTimes.get(name) ?? [])];
    if (schedules.length === 0) continue;
    const parent = profile.inherit === undefined ? undefined : set.profiles[profile.inherit];
    const statusFile = unescapedPath(profile['status-file'] ?? parent?.['status-file']);
    found.push({
      domain,
      level,
      schedules,
      from: 'resticprofile',
      name,
      file,
      ...(statusFile === undefined ? {} : { statusFile }),
    });
  }
  return found;
}

/** systemd's `\xNN` escapes in a unit name, undone. */
export function unescapeUnitName(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const hex = /^\\x([0-9a-fA-F]{2})/.exec(text.slice(i))?.[1];
    if (hex !== undefined) {
      bytes.push(parseInt(hex, 16));
      i += 3;
    } else bytes.push(...Buffer.from(text.charAt(i), 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** A timer `generate --systemd` wrote (pure): its domain and level from its name, times from `OnCalendar=`. */
export function timerSchedule(unitName: string, text: string, file: string): InstalledSchedule | undefined {
  const match = /^unifi-backup-(.+)-(incr|diff|full)\.timer$/.exec(unitName);
  const [, escaped, level] = match ?? [];
  if (escaped === undefined || !isLevel(level)) return undefined;
  const schedules = [...text.matchAll(/^OnCalendar=(.*)$/gm)].map((m) => (m[1] ?? '').replaceAll('%%', '%'));
  return { domain: unescapeUnitName(escaped), level, schedules, from: 'systemd', name: unitName, file };
}
