import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import { UsageError } from '../../errors.js';
import { globalOptions } from '../context.js';
import type { GlobalOptions } from '../context.js';
import { programRunner } from '../../host/runner.js';
import type { Runner } from '../../host/runner.js';
import { requireCalendar } from '../../host/calendar.js';
import type { ConfigVersion } from '../../profiles/config.js';
import type { ConfigFormat } from '../../profiles/format.js';
import type * as formatModule from '../../profiles/format.js';
import {
  buildProfileSet,
  checkResticprofileValue,
  defaultLogDir,
  defaultProgram,
  defaultRetention,
  levels,
} from '../../profiles/model.js';
import type { NotifySettings, ProfileSettings, Retention, ScheduledLevel } from '../../profiles/model.js';
import { shellCommand } from '../../profiles/shell.js';
import { writeStateFile } from '../../state/write.js';
import { buildSystemdUnits, defaultUnitDir, enableCommands } from '../../profiles/systemd.js';
import { defaultLockDir } from '../../lock/lock.js';
import { collect, wholeNumber } from '../options.js';

/** The options of `unifi-backup generate` as commander hands them over. */
export interface GenerateOptions {
  readonly incr?: string;
  readonly diff?: string;
  readonly full?: string;
  readonly prune?: string;
  readonly check?: string;
  readonly checkSubset: string;
  readonly repository?: string;
  readonly passwordFile?: string;
  readonly init?: boolean;
  readonly keepHourly: string;
  readonly keepLast: string;
  readonly keepDaily: string;
  readonly keepWeekly: string;
  readonly keepMonthly: string;
  readonly keepYearly: string;
  readonly notifyConfig?: string;
  readonly notifyAlias: string[];
  readonly healthchecks?: string;
  readonly prometheusDir?: string;
  readonly output?: string;
  readonly format?: string;
  readonly configVersion: string;
  readonly systemd?: string;
  readonly install?: boolean;
  readonly randomizedDelay?: string;
  readonly force?: boolean;
}

export interface GenerateDependencies {
  readonly runner?: Runner;
  /** Where `--install` writes units; tests point it at a temporary folder. */
  readonly unitDir?: string;
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
}

interface Io {
  readonly runner: Runner;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const defaultStateDir = '/var/lib/unifi-backup';
const defaultConnect = 'qemu:///system';

function retentionFrom(options: GenerateOptions): Retention {
  return {
    hourly: wholeNumber('--keep-hourly', options.keepHourly, 0),
    last: wholeNumber('--keep-last', options.keepLast, 0),
    daily: wholeNumber('--keep-daily', options.keepDaily, 0),
    weekly: wholeNumber('--keep-weekly', options.keepWeekly, 0),
    monthly: wholeNumber('--keep-monthly', options.keepMonthly, 0),
    yearly: wholeNumber('--keep-yearly', options.keepYearly, 0),
  };
}

async function checkSchedule(
  schedule: string,
  option: string,
  options: GenerateOptions,
  io: Io,
): Promise<void> {
  const note = await requireCalendar(schedule, option, io.runner, options.force === true);
  if (note !== undefined) io.err(`${note}\n`);
}

async function schedulesFrom(
  options: GenerateOptions,
  io: Io,
): Promise<Partial<Record<ScheduledLevel, string>>> {
  const schedules: Partial<Record<ScheduledLevel, string>> = {};
  for (const level of levels) {
    const schedule = options[level];
    if (schedule === undefined) continue;
    await checkSchedule(schedule, `--${level}`, options, io);
    schedules[level] = schedule;
  }
  return schedules;
}

function formatFrom(
  options: GenerateOptions,
  { configFormats, formatFromPath }: typeof formatModule,
): ConfigFormat {
  if (options.format !== undefined) {
    const format = configFormats.find((name) => name === options.format);
    if (format === undefined)
      throw new UsageError(`--format must be yaml, toml or json, not "${options.format}".`);
    return format;
  }
  return (options.output === undefined ? undefined : formatFromPath(options.output)) ?? 'yaml';
}

function versionFrom(options: GenerateOptions): ConfigVersion {
  const version = options.configVersion;
  if (version !== '1' && version !== '2')
    throw new UsageError(`--config-version must be 1 or 2, not "${version}".`);
  return version;
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(
      `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}); nothing was written.`,
    );
  }
}

/** Replaces the file in one step, so resticprofile never reads half of it; private, as it may hold credentials. */
async function writeWhole(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  writeStateFile(file, text);
}

/** The options that apply only to resticprofile profiles, named as the user typed them. */
function profileOnlyOptions(options: GenerateOptions): string[] {
  const given: [unknown, string][] = [
    [options.output, '--output'],
    [options.format, '--format'],
    [options.configVersion === '1' ? undefined : options.configVersion, '--config-version'],
    [options.prune, '--prune'],
    [options.check, '--check'],
    [options.healthchecks, '--healthchecks'],
    [options.prometheusDir, '--prometheus-dir'],
    [options.repository, '--repository'],
    [options.passwordFile, '--password-file'],
    [options.init, '--init'],
  ];
  const keeps = ['keepHourly', 'keepLast', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'] as const;
  for (const key of keeps) {
    const name = `--keep-${key.slice(4).toLowerCase()}`;
    const fallback = String(defaultRetention[key.slice(4).toLowerCase() as keyof Retention]);
    if (options[key] !== fallback) given.push([true, name]);
  }
  return given.filter(([value]) => value !== undefined).map(([, name]) => name);
}

async function generateUnits(
  domains: readonly string[],
  options: GenerateOptions,
  global: GlobalOptions,
  dependencies: GenerateDependencies,
  io: Io,
): Promise<void> {
  const notApplying = profileOnlyOptions(options);
  if (notApplying.length > 0) {
    throw new UsageError(
      `${notApplying.join(', ')} ${notApplying.length === 1 ? 'applies' : 'apply'} to resticprofile profiles, ` +
        'not to systemd units: `unifi-backup run` takes the repository and retention from config.yaml ' +
        '(see docs/run.md). Leave them out, or drop --systemd/--install.',
    );
  }
  if (options.install === true && options.systemd !== undefined) {
    throw new UsageError(
      'give either --systemd DIR (write units there) or --install (write them to systemd).',
    );
  }
  const schedules = await schedulesFrom(options, io);
  if (Object.keys(schedules).length === 0) {
    throw new UsageError('systemd units need at least one schedule: --incr, --diff or --full.');
  }
  const delay =
    options.randomizedDelay === undefined
      ? undefined
      : wholeNumber('--randomized-delay', options.randomizedDelay, 0);
  const notify = await notifyFrom(options);
  const units = buildSystemdUnits(
    {
      schedules,
      program: defaultProgram,
      programOptions: programOptions(global),
      ...(delay === undefined ? {} : { randomizedDelaySec: delay }),
      ...(notify === undefined ? {} : { notify }),
    },
    domains,
  );
  const folder = options.systemd ?? dependencies.unitDir ?? defaultUnitDir;
  if (global.dryRun) {
    for (const unit of units) io.out(`# ${join(folder, unit.name)}\n${unit.text}\n`);
    io.out('(dry run: nothing was written)\n');
    return;
  }
  await mkdir(folder, { recursive: true });
  for (const unit of units) {
    await writeWhole(join(folder, unit.name), unit.text);
    io.out(`wrote ${join(folder, unit.name)}\n`);
  }
  const commands = enableCommands(units).map((argv) => shellCommand(argv));
  if (options.install === true) {
    io.out(`\nEnable the timers with:\n${commands.map((line) => `  ${line}\n`).join('')}`);
  } else {
    io.out(
      `\nInstall them with:\n  cp ${units.map((unit) => shellCommand([join(folder, unit.name)])).join(' ')} ` +
        `${defaultUnitDir}/\n${commands.map((line) => `  ${line}\n`).join('')}`,
    );
  }
}

/** Global options the scheduled commands must repeat, so they act on the same host, state and locks. */
function programOptions(global: GlobalOptions): string[] {
  return [
    ...(global.connect === defaultConnect ? [] : ['--connect', global.connect]),
    ...(global.stateDir === defaultStateDir ? [] : ['--state-dir', global.stateDir]),
    ...(global.lockDir === defaultLockDir ? [] : ['--lock-dir', global.lockDir]),
  ];
}

async function requireFile(file: string, option: string): Promise<void> {
  try {
    if (!(await stat(file)).isFile()) throw new UsageError(`${option} ${file} is not a file.`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      `${option} ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}. Every scheduled run ` +
        'would fail; create it first (or fix the path).',
    );
  }
}

/** The notify config and every alias the hooks name must work now, not fail at the first run. */
async function notifyFrom(options: GenerateOptions): Promise<NotifySettings | undefined> {
  if (options.notifyConfig === undefined) {
    if (options.notifyAlias.length > 0)
      throw new UsageError('--notify-alias needs --notify-config FILE too.');
    return undefined;
  }
  const { loadNotifyConfig, resolveAliases } = await import('../../notify/config.js');
  const config = await loadNotifyConfig(options.notifyConfig);
  if (options.notifyAlias.length === 0) {
    const known = [...config.aliases.keys()].join(', ') || 'none';
    throw new UsageError(
      `--notify-config ${options.notifyConfig} needs --notify-alias NAME: which alias to notify (known: ${known}).`,
    );
  }
  resolveAliases(config, options.notifyAlias);
  return { config: options.notifyConfig, aliases: options.notifyAlias };
}

async function profileSettings(
  options: GenerateOptions,
  global: GlobalOptions,
  io: Io,
): Promise<ProfileSettings> {
  const schedules = await schedulesFrom(options, io);
  if (options.prune !== undefined) await checkSchedule(options.prune, '--prune', options, io);
  if (options.check !== undefined) await checkSchedule(options.check, '--check', options, io);
  if (!/^(\d+(\.\d+)?%|\d+\/\d+|\d+[KMGT]?)$/.test(options.checkSubset))
    throw new UsageError(`--check-subset must be like 10%, 1/7 or 500M, not "${options.checkSubset}".`);
  if (options.passwordFile !== undefined) await requireFile(options.passwordFile, '--password-file');
  const notify = await notifyFrom(options);
  const values: [string | undefined, string][] = [
    [options.repository, '--repository'],
    [options.passwordFile, '--password-file'],
    [options.notifyConfig, '--notify-config'],
    [options.healthchecks, '--healthchecks'],
    [options.prometheusDir, '--prometheus-dir'],
    [global.stateDir, '--state-dir'],
    [global.lockDir, '--lock-dir'],
    ...options.notifyAlias.map((alias): [string, string] => [alias, '--notify-alias']),
  ];
  for (const [value, what] of values) if (value !== undefined) checkResticprofileValue(value, what);
  if (options.healthchecks !== undefined && !/^https?:\/\//.test(options.healthchecks))
    throw new UsageError(`--healthchecks must be an http:// or https:// URL, not "${options.healthchecks}".`);
  return {
    schedules,
    retention: retentionFrom(options),
    initialize: options.init === true,
    upkeep: {
      ...(options.prune === undefined ? {} : { prune: options.prune }),
      ...(options.check === undefined ? {} : { check: options.check }),
      checkSubset: options.checkSubset,
    },
    program: defaultProgram,
    programOptions: programOptions(global),
    lockDir: global.lockDir,
    logDir: defaultLogDir,
    stateDir: global.stateDir,
    ...(options.repository === undefined ? {} : { repository: options.repository }),
    ...(options.passwordFile === undefined ? {} : { passwordFile: options.passwordFile }),
    ...(notify === undefined ? {} : { notify }),
    ...(options.healthchecks === undefined ? {} : { pingUrl: options.healthchecks }),
    ...(options.prometheusDir === undefined ? {} : { prometheusDir: options.prometheusDir }),
  };
}

/** `diff -u` of the file as it is and as it would be; diffutils is on every host restic runs on. */
async function showDiff(file: string, existing: string | undefined, text: string, io: Io): Promise<void> {
  const result = await io.runner({
    argv: [
      'diff',
      '-u',
      '--label',
      `${file} (now)`,
      '--label',
      `${file} (generated)`,
      existing === undefined ? '/dev/null' : file,
      '-',
    ],
    input: text,
    timeoutMs: 30_000,
  });
  if (result.exitCode > 1) throw new UsageError(`diff could not compare ${file}: ${result.stderr.trim()}`);
  io.out(result.exitCode === 0 ? `${file}: no change\n` : result.stdout);
  io.out('(dry run: nothing was written)\n');
}

async function generateProfiles(
  domains: readonly string[],
  options: GenerateOptions,
  global: GlobalOptions,
  io: Io,
): Promise<void> {
  if (options.randomizedDelay !== undefined) {
    throw new UsageError('--randomized-delay applies to systemd units (--systemd DIR or --install).');
  }
  // The YAML and TOML parsers load only when a profile is rendered (CLI start-up stays lean).
  const formats = await import('../../profiles/format.js');
  const { fromConfig, keepExistingSchedules } = await import('../../profiles/config.js');
  const format = formatFrom(options, formats);
  const version = versionFrom(options);
  const settings = await profileSettings(options, global, io);
  const generated = buildProfileSet(settings, domains, version);
  if (options.output === undefined) {
    io.out(formats.renderConfig(generated, version, format).text);
    return;
  }
  const existing = await readIfPresent(options.output);
  const set =
    existing === undefined
      ? generated
      : keepExistingSchedules(
          generated,
          fromConfig(formats.parseConfigText(existing, format, options.output), options.output),
        );
  const rendered = formats.renderConfig(set, version, format, existing, options.output);
  for (const note of rendered.notes) io.err(`${note}\n`);
  if (global.dryRun) {
    await showDiff(options.output, existing, rendered.text, io);
    return;
  }
  await writeWhole(options.output, rendered.text);
  io.out(
    `${existing === undefined ? 'wrote' : 'updated'} ${options.output}: ${Object.keys(set.profiles).join(', ')}\n`,
  );
}

export function generateCommand(dependencies: GenerateDependencies = {}): Command {
  return new Command('generate')
    .description(
      'Write resticprofile profiles (or systemd timers) that back up domains on a schedule. ' +
        'Works offline: the domains need not be defined yet.',
    )
    .argument('<domain...>', 'libvirt domains to schedule')
    .option(
      '-i, --incr <schedule>',
      'incremental backup schedule (systemd OnCalendar), e.g. "Mon..Fri 8,12,16,20:00"',
    )
    .option('-d, --diff <schedule>', 'differential backup schedule, e.g. "Mon..Fri 21:00"')
    .option('-f, --full <schedule>', 'full backup schedule, e.g. "Sat 20:00"')
    .option('--force', 'accept a schedule that never elapses or fires more often than every 15 minutes')
    .option('--repository <repo>', 'restic repository')
    .option('--password-file <file>', 'restic repository password file (must exist)')
    .option('--init', 'let resticprofile create the repository when it is missing (initialize)')
    .option('--prune <schedule>', "schedule of the repository's prune")
    .option('--check <schedule>', "schedule of the repository's check")
    .option('--check-subset <subset>', 'restic check --read-data-subset', '10%')
    .option('--keep-hourly <n>', 'snapshots to keep per level: hourly', String(defaultRetention.hourly))
    .option('--keep-last <n>', 'last', String(defaultRetention.last))
    .option('--keep-daily <n>', 'daily', String(defaultRetention.daily))
    .option('--keep-weekly <n>', 'weekly', String(defaultRetention.weekly))
    .option('--keep-monthly <n>', 'monthly', String(defaultRetention.monthly))
    .option('--keep-yearly <n>', 'yearly', String(defaultRetention.yearly))
    .option('--notify-config <file>', 'notify after each run with `unifi-backup notify send --config FILE`')
    .addOption(
      new Option('--notify-alias <alias>', 'alias from the notify config; repeatable')
        .argParser(collect)
        .default([]),
    )
    .option(
      '--healthchecks <url>',
      'ping URL after each run, URL/fail after a failure; {profile} is replaced',
    )
    .option('--prometheus-dir <dir>', 'write restic metrics for node_exporter into DIR')
    .option('--output <file>', 'write or update this file instead of printing (keeps what is there)')
    .option('--format <format>', 'yaml, toml or json (default: from --output, else yaml)')
    .option('--config-version <version>', 'resticprofile configuration version, 1 or 2', '1')
    .option('--systemd <dir>', 'write systemd services and timers to DIR instead of resticprofile profiles')
    .option('--install', `write systemd units to ${defaultUnitDir} and print the systemctl commands`)
    .option('--randomized-delay <seconds>', 'RandomizedDelaySec= of the systemd timers')
    .action(async (domains: string[], options: GenerateOptions, command: Command) => {
      await generate(domains, options, command, dependencies);
    });
}

async function generate(
  domains: string[],
  options: GenerateOptions,
  command: Command,
  dependencies: GenerateDependencies,
): Promise<void> {
  const parsed = globalOptions(command);
  // Standalone (in tests) the command has no parent to hold the global options' defaults.
  const given: Partial<GlobalOptions> = parsed;
  const global = {
    ...parsed,
    connect: given.connect ?? defaultConnect,
    stateDir: given.stateDir ?? defaultStateDir,
    lockDir: given.lockDir ?? defaultLockDir,
    dryRun: given.dryRun ?? false,
  };
  const io: Io = {
    runner: dependencies.runner ?? programRunner,
    out: dependencies.stdout ?? ((text: string) => process.stdout.write(text)),
    err: dependencies.stderr ?? ((text: string) => process.stderr.write(text)),
  };
  if (options.systemd !== undefined || options.install === true)
    await generateUnits(domains, options, global, dependencies, io);
  else await generateProfiles(domains, options, global, io);
}
