import { UsageError } from '../errors.js';
import { shellCommand, shellQuote } from './shell.js';

export const levels = ['incr', 'diff', 'full'] as const;
export type Level = (typeof levels)[number];

/** restic `forget --keep-*` values; the original generator's defaults in {@link defaultRetention}. */
export interface Retention {
  readonly hourly: number;
  readonly last: number;
  readonly daily: number;
  readonly weekly: number;
  readonly monthly: number;
  readonly yearly: number;
}

export const defaultRetention: Retention = {
  hourly: 1,
  last: 3,
  daily: 14,
  weekly: 12,
  monthly: 6,
  yearly: 1,
};

export interface NotifySettings {
  readonly config: string;
  readonly alias?: string;
}

/** What the user asked for, the same for every domain. */
export interface ProfileSettings {
  readonly schedules: Partial<Record<Level, string>>;
  readonly repository?: string;
  readonly passwordFile?: string;
  readonly retention: Retention;
  readonly notify?: NotifySettings;
  /** The command resticprofile and systemd call, `unifi-backup` on PATH by default. */
  readonly program: string;
  readonly lockDir: string;
  readonly logDir: string;
}

export const defaultProgram = 'unifi-backup';
export const defaultLogDir = '/var/log/unifi-backup';

export interface DomainSource {
  readonly domain: string;
  /** The folder restic backs up: the domain's disks and config dumps. */
  readonly source: string;
}

export interface BackupSection {
  readonly source: string[];
  readonly tag: string[];
  readonly schedule?: string;
  readonly 'schedule-permission'?: 'system';
  readonly 'schedule-lock-wait'?: string;
  readonly 'schedule-log': string;
  readonly 'run-before': string[];
  readonly 'run-after'?: string[];
  readonly 'run-after-fail'?: string[];
}

export interface RetentionSection {
  readonly 'after-backup': boolean;
  readonly 'keep-hourly': number;
  readonly 'keep-last': number;
  readonly 'keep-daily': number;
  readonly 'keep-weekly': number;
  readonly 'keep-monthly': number;
  readonly 'keep-yearly': number;
  readonly tag: string;
}

/** One resticprofile profile; the same body in configuration versions 1 and 2. */
export interface Profile {
  readonly description: string;
  readonly inherit?: string;
  readonly repository?: string;
  readonly 'password-file'?: string;
  readonly lock?: string;
  readonly backup: BackupSection;
  readonly retention: RetentionSection;
}

/** Profiles and groups, independent of file format and configuration version. */
export interface ProfileSet {
  readonly profiles: Record<string, Profile>;
  readonly groups: Record<string, string[]>;
}

/** `all-incr` … never clash with a profile, because `all` cannot be a domain name here. */
export function groupName(level: Level): string {
  return `all-${level}`;
}

export function profileName(domain: string, level: Level): string {
  return `${domain}-${level}`;
}

/** restic splits `--tag a,b` at commas, so a comma in a domain name cannot survive into a tag. */
export function domainTag(domain: string): string {
  return domain.replaceAll(',', '_');
}

/** A file-name-safe form of the domain for lock and log files. */
export function domainFileName(domain: string): string {
  return domain.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function checkDomainName(domain: string): void {
  if (domain === '' || domain === 'all') {
    throw new UsageError(`"${domain}" cannot be a domain name here; name the domains one by one.`);
  }
  // resticprofile reads its configuration as a Go template before parsing it.
  if (domain.includes('{{') || domain.includes('}}')) {
    throw new UsageError(
      `domain "${domain}": names containing "{{" or "}}" break resticprofile's templates.`,
    );
  }
  if (domain.includes('\0')) throw new UsageError('a domain name cannot contain a NUL character.');
}

/**
 * The levels that get a profile: every scheduled level, and always `incr`, the one the others
 * inherit from. An unscheduled diff or full profile would inherit the incr schedule.
 */
export function profiledLevels(settings: ProfileSettings): Level[] {
  return levels.filter((level) => level === 'incr' || settings.schedules[level] !== undefined);
}

function notifyCommands(settings: ProfileSettings, domain: string, level: Level) {
  const notify = settings.notify;
  if (notify === undefined) return {};
  const base = [settings.program, 'notify', 'send', '--config', notify.config];
  if (notify.alias !== undefined) base.push('--alias', notify.alias);
  const ok = shellCommand([
    ...base,
    '--title',
    `Backup ${level} of ${domain} succeeded`,
    '--msg',
    `resticprofile profile ${profileName(domain, level)} finished.`,
  ]);
  // $ERROR_MESSAGE is set by resticprofile for run-after-fail; double quotes keep it one word.
  const fail = `${shellCommand([...base, '--title', `Backup ${level} of ${domain} FAILED`, '--msg'])} ${shellQuote(
    `resticprofile profile ${profileName(domain, level)} failed: `,
  )}"$ERROR_MESSAGE"`;
  return { 'run-after': [ok], 'run-after-fail': [fail] };
}

function levelProfile(settings: ProfileSettings, target: DomainSource, level: Level): Profile {
  const { domain } = target;
  const schedule = settings.schedules[level];
  const logFile = `${settings.logDir}/${domainFileName(domain)}-${level}.log`;
  const backup: BackupSection = {
    source: [target.source],
    tag: [domainTag(domain), 'kvm', level],
    ...(schedule === undefined
      ? {}
      : { schedule, 'schedule-permission': 'system' as const, 'schedule-lock-wait': '4h' }),
    'schedule-log': logFile,
    'run-before': [shellCommand([settings.program, 'backup', level, domain])],
    ...notifyCommands(settings, domain, level),
  };
  const { retention } = settings;
  const retentionSection: RetentionSection = {
    'after-backup': true,
    'keep-hourly': retention.hourly,
    'keep-last': retention.last,
    'keep-daily': retention.daily,
    'keep-weekly': retention.weekly,
    'keep-monthly': retention.monthly,
    'keep-yearly': retention.yearly,
    // One tag list: restic forgets only snapshots carrying both the domain's and the level's tag.
    tag: `${domainTag(domain)},${level}`,
  };
  const description = `${level} backup of libvirt domain ${domain}`;
  if (level !== 'incr') {
    return { description, inherit: profileName(domain, 'incr'), backup, retention: retentionSection };
  }
  return {
    description,
    ...(settings.repository === undefined ? {} : { repository: settings.repository }),
    ...(settings.passwordFile === undefined ? {} : { 'password-file': settings.passwordFile }),
    lock: `${settings.lockDir}/resticprofile-${domainFileName(domain)}.lock`,
    backup,
    retention: retentionSection,
  };
}

/** The profiles and groups for the given domains (pure). */
export function buildProfileSet(settings: ProfileSettings, targets: readonly DomainSource[]): ProfileSet {
  const profiles: Record<string, Profile> = {};
  const groups: Record<string, string[]> = {};
  const profiled = profiledLevels(settings);
  for (const target of targets) {
    checkDomainName(target.domain);
    for (const level of profiled) {
      profiles[profileName(target.domain, level)] = levelProfile(settings, target, level);
      (groups[groupName(level)] ??= []).push(profileName(target.domain, level));
    }
  }
  return { profiles, groups };
}
