import type { Level } from '../chain/consolidate.js';
import { UsageError } from '../errors.js';
import { profileFileName, tagProblem } from '../naming.js';
import type { ConfigVersion } from './config.js';
import { shellCommand, shellQuote } from './shell.js';

/** The levels a schedule runs: every backup {@link Level} but `disable`. */
export const levels = ['incr', 'diff', 'full'] as const satisfies readonly Level[];
export type ScheduledLevel = (typeof levels)[number];

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
  readonly aliases: readonly string[];
}

/** Schedules of the repository's own upkeep, in a profile of their own (one per repository). */
export interface RepositorySchedules {
  readonly prune?: string;
  readonly check?: string;
  /** restic `check --read-data-subset`, e.g. `10%` or `1/7`. */
  readonly checkSubset: string;
}

/** What the user asked for, the same for every domain. */
export interface ProfileSettings {
  readonly schedules: Partial<Record<ScheduledLevel, string>>;
  readonly repository?: string;
  readonly passwordFile?: string;
  readonly initialize: boolean;
  readonly retention: Retention;
  readonly notify?: NotifySettings;
  /** healthchecks-style ping URL; `{profile}` is replaced, `/fail` is added for failures. */
  readonly pingUrl?: string;
  readonly prometheusDir?: string;
  readonly upkeep: RepositorySchedules;
  /** The command resticprofile calls, `unifi-backup` on PATH by default. */
  readonly program: string;
  /** Global options every hook passes on (a non-default --state-dir or --lock-dir). */
  readonly programOptions: readonly string[];
  readonly lockDir: string;
  readonly logDir: string;
  /** Holds the file lists and resticprofile status files. */
  readonly stateDir: string;
}

export const defaultProgram = 'unifi-backup';
export const defaultLogDir = '/var/log/unifi-backup';
export const repositoryProfileName = 'unifi-backup-repository';

/** A `send-after` / `send-after-fail` request. */
export interface HttpHook {
  readonly method: 'HEAD' | 'POST';
  readonly url: string;
  readonly body?: string;
}

export type ProfileSection = Record<string, unknown>;

/** One resticprofile profile; the same body in configuration versions 1 and 2. */
export interface Profile {
  readonly description: string;
  readonly inherit?: string;
  readonly repository?: string;
  readonly 'password-file'?: string;
  readonly initialize?: boolean;
  readonly lock?: string;
  readonly 'status-file'?: string;
  readonly 'prometheus-save-to-file'?: string;
  readonly backup?: ProfileSection;
  readonly retention?: ProfileSection;
  readonly prune?: ProfileSection;
  readonly check?: ProfileSection;
}

/** A version 2 group schedule (`groups.<name>.schedules.backup`). */
export interface GroupSchedule {
  readonly at: string[];
  readonly permission: 'system';
  readonly priority: 'background';
  readonly 'lock-wait': string;
  readonly log: string;
  readonly 'after-network-online'?: boolean;
}

export interface Group {
  readonly profiles: string[];
  readonly schedules?: { readonly backup: GroupSchedule };
}

/** Profiles and groups, independent of file format; schedules sit where the version wants them. */
export interface ProfileSet {
  readonly profiles: Record<string, Profile>;
  readonly groups: Record<string, Group>;
}

/** `all-incr` … never clash with a profile, because `all` cannot be a domain name here. */
export function groupName(level: ScheduledLevel): string {
  return `all-${level}`;
}

export function profileName(domain: string, level: ScheduledLevel): string {
  return `${domain}-${level}`;
}

/** The verbatim list of files the level's `run-before` writes and restic reads. */
export function fileListPath(stateDir: string, domain: string): string {
  return `${stateDir}/lists/${profileFileName(domain)}.files`;
}

/**
 * resticprofile reads its file as a Go template, expands `$VAR` in paths and hands restic its flags
 * through a shell that expands `*`, `?` and `[`. A value with a template cannot be written safely.
 */
export function checkResticprofileValue(value: string, what: string): void {
  if (value.includes('{{') || value.includes('}}')) {
    throw new UsageError(`${what} "${value}": "{{" and "}}" break resticprofile's templates.`);
  }
  if (/[\0\n\r]/.test(value)) throw new UsageError(`${what} ${JSON.stringify(value)} must be one line.`);
}

/** A path resticprofile expands `$VAR` in: `$$` is its escape for a literal dollar sign. */
export function resticprofilePath(value: string): string {
  return value.replaceAll('$', '$$$$');
}

export function checkDomainName(domain: string): void {
  if (domain === '' || domain === 'all') {
    throw new UsageError(`"${domain}" cannot be a domain name here; name the domains one by one.`);
  }
  if (/[\0\n\r]/.test(domain)) throw new UsageError(`domain ${JSON.stringify(domain)} must be one line.`);
  // Profiles and units alike: the scheduled run would refuse it, and no restore could find it by tag.
  const problem = tagProblem(domain);
  if (problem !== undefined)
    throw new UsageError(
      `domain "${domain}": ${problem}. Rename the domain (virsh domrename) to schedule it.`,
    );
}

/** The domain is a restic tag that resticprofile hands restic through a shell, unquoted for globs. */
function checkProfileDomain(domain: string): void {
  checkDomainName(domain);
  checkResticprofileValue(domain, 'domain');
  const bad = /[,*?[\]]/.exec(domain)?.[0];
  if (bad !== undefined) {
    throw new UsageError(
      `domain "${domain}": "${bad}" cannot be in a restic tag that resticprofile passes on ` +
        '(restic splits tags at commas; the shell resticprofile uses expands * ? [ ]). ' +
        'Rename the domain (virsh domrename) or schedule it with --systemd.',
    );
  }
}

/** A repository restic reaches over the network: its schedules wait for the network. */
export function isRemoteRepository(repository: string | undefined): boolean {
  return repository !== undefined && !repository.startsWith('/') && !repository.startsWith('local:');
}

/**
 * The levels that get a profile: every scheduled level, and always `incr`, the one the others
 * inherit from. An unscheduled diff or full profile would inherit the incr schedule.
 */
export function profiledLevels(settings: ProfileSettings): ScheduledLevel[] {
  return levels.filter((level) => level === 'incr' || settings.schedules[level] !== undefined);
}

/** `notify send` to the configured aliases: the start of every notification a schedule sends. */
export function notifySendArgv(
  program: string,
  programOptions: readonly string[],
  notify: NotifySettings,
): string[] {
  return [
    program,
    ...programOptions,
    'notify',
    'send',
    '--config',
    notify.config,
    ...notify.aliases.flatMap((alias) => ['--alias', alias]),
  ];
}

function notifyHooks(settings: ProfileSettings, domain: string, level: ScheduledLevel): ProfileSection {
  const notify = settings.notify;
  if (notify === undefined) return {};
  const base = notifySendArgv(settings.program, settings.programOptions, notify);
  const name = profileName(domain, level);
  const ok = shellCommand([
    ...base,
    '--title',
    `Backup ${level} of ${domain} succeeded`,
    '--msg',
    `resticprofile profile ${name} finished.`,
  ]);
  // $ERROR_MESSAGE is set by resticprofile for run-after-fail; double quotes keep it one word.
  const fail = `${shellCommand([...base, '--title', `Backup ${level} of ${domain} FAILED`, '--msg'])} ${shellQuote(
    `resticprofile profile ${name} failed: `,
  )}"$ERROR_MESSAGE"`;
  return { 'run-after': [ok], 'run-after-fail': [fail] };
}

function pingHooks(settings: ProfileSettings, domain: string, level: ScheduledLevel): ProfileSection {
  if (settings.pingUrl === undefined) return {};
  const url = resticprofilePath(
    settings.pingUrl.replaceAll('{profile}', encodeURIComponent(profileName(domain, level))),
  );
  const success: HttpHook = { method: 'HEAD', url };
  // resticprofile expands ${ERROR} and ${ERROR_STDERR} in the body of a send-after-fail request.
  const failure: HttpHook = { method: 'POST', url: `${url}/fail`, body: '${ERROR}\n\n${ERROR_STDERR}' };
  return { 'send-after': success, 'send-after-fail': failure };
}

function profileSchedule(
  settings: ProfileSettings,
  domain: string,
  level: ScheduledLevel,
  version: ConfigVersion,
) {
  const schedule = settings.schedules[level];
  if (schedule === undefined || version === '2') return {};
  return {
    schedule,
    'schedule-permission': 'system',
    'schedule-priority': 'background',
    'schedule-lock-wait': '4h',
    'schedule-log': resticprofilePath(`${settings.logDir}/${profileFileName(domain)}-${level}.log`),
    ...(isRemoteRepository(settings.repository) ? { 'schedule-after-network-online': true } : {}),
  };
}

function retentionSection(settings: ProfileSettings, domain: string, level: ScheduledLevel): ProfileSection {
  const { retention } = settings;
  return {
    'after-backup': true,
    'keep-hourly': retention.hourly,
    'keep-last': retention.last,
    'keep-daily': retention.daily,
    'keep-weekly': retention.weekly,
    'keep-monthly': retention.monthly,
    'keep-yearly': retention.yearly,
    // One tag list: restic forgets only snapshots carrying both the domain's and the level's tag.
    tag: `${domain},${level}`,
    // Every run backs up different layer files: grouping by paths (restic's default) would keep all.
    'group-by': 'host,tags',
    path: false,
  };
}

function levelProfile(
  settings: ProfileSettings,
  domain: string,
  level: ScheduledLevel,
  version: ConfigVersion,
): Profile {
  const list = fileListPath(settings.stateDir, domain);
  const prepare = [
    settings.program,
    ...settings.programOptions,
    'backup',
    level,
    '--files-to',
    list,
    '--',
    domain,
  ];
  const backup: ProfileSection = {
    'files-from-verbatim': [resticprofilePath(list)],
    tag: [domain, 'kvm', level],
    ...profileSchedule(settings, domain, level, version),
    'run-before': [shellCommand(prepare)],
    ...notifyHooks(settings, domain, level),
    ...pingHooks(settings, domain, level),
  };
  const description = `${level} backup of libvirt domain ${domain}`;
  const retention = retentionSection(settings, domain, level);
  if (level !== 'incr') return { description, inherit: profileName(domain, 'incr'), backup, retention };
  const file = profileFileName(domain);
  return {
    description,
    ...repositoryKeys(settings),
    ...(settings.initialize ? { initialize: true } : {}),
    lock: resticprofilePath(`${settings.lockDir}/resticprofile-${file}.lock`),
    'status-file': resticprofilePath(`${settings.stateDir}/resticprofile/${file}.status.json`),
    ...(settings.prometheusDir === undefined
      ? {}
      : {
          'prometheus-save-to-file': resticprofilePath(`${settings.prometheusDir}/unifi-backup-${file}.prom`),
        }),
    backup,
    retention,
  };
}

function repositoryKeys(settings: ProfileSettings): Pick<Profile, 'repository' | 'password-file'> {
  return {
    ...(settings.repository === undefined ? {} : { repository: resticprofilePath(settings.repository) }),
    ...(settings.passwordFile === undefined
      ? {}
      : { 'password-file': resticprofilePath(settings.passwordFile) }),
  };
}

function upkeepSection(settings: ProfileSettings, schedule: string, log: string): ProfileSection {
  return {
    schedule,
    'schedule-permission': 'system',
    'schedule-priority': 'background',
    'schedule-lock-wait': '4h',
    'schedule-log': resticprofilePath(`${settings.logDir}/${log}`),
    ...(isRemoteRepository(settings.repository) ? { 'schedule-after-network-online': true } : {}),
  };
}

/** `prune` and `check` run once per repository, not per domain: one profile of their own. */
function repositoryProfile(settings: ProfileSettings): Profile | undefined {
  const { prune, check, checkSubset } = settings.upkeep;
  if (prune === undefined && check === undefined) return undefined;
  return {
    description: 'upkeep of the restic repository the unifi-backup profiles write to',
    ...repositoryKeys(settings),
    ...(prune === undefined ? {} : { prune: upkeepSection(settings, prune, 'repository-prune.log') }),
    ...(check === undefined
      ? {}
      : {
          check: {
            'read-data-subset': checkSubset,
            ...upkeepSection(settings, check, 'repository-check.log'),
          },
        }),
  };
}

function groupSchedule(settings: ProfileSettings, level: ScheduledLevel): Group['schedules'] {
  const schedule = settings.schedules[level];
  if (schedule === undefined) return undefined;
  return {
    backup: {
      at: [schedule],
      permission: 'system',
      priority: 'background',
      'lock-wait': '4h',
      log: resticprofilePath(`${settings.logDir}/${groupName(level)}.log`),
      ...(isRemoteRepository(settings.repository) ? { 'after-network-online': true } : {}),
    },
  };
}

/**
 * The profiles and groups for the given domains (pure). Version 1 schedules each profile; version 2
 * schedules the level's group, so the domains of a host run one after another against the repository.
 */
export function buildProfileSet(
  settings: ProfileSettings,
  domains: readonly string[],
  version: ConfigVersion,
): ProfileSet {
  const profiles: Record<string, Profile> = {};
  const members: Partial<Record<ScheduledLevel, string[]>> = {};
  const profiled = profiledLevels(settings);
  for (const domain of domains) {
    checkProfileDomain(domain);
    for (const level of profiled) {
      profiles[profileName(domain, level)] = levelProfile(settings, domain, level, version);
      (members[level] ??= []).push(profileName(domain, level));
    }
  }
  const upkeep = repositoryProfile(settings);
  if (upkeep !== undefined) profiles[repositoryProfileName] = upkeep;
  const groups: Record<string, Group> = {};
  for (const level of profiled) {
    const schedules = version === '2' ? groupSchedule(settings, level) : undefined;
    groups[groupName(level)] = {
      profiles: members[level] ?? [],
      ...(schedules === undefined ? {} : { schedules }),
    };
  }
  return { profiles, groups };
}
