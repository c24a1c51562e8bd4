import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { domainFolderLookup, globalOptions } from '../context.js';
import { execaRunner } from '../../host/runner.js';
import type { Runner } from '../../host/runner.js';
import { requireCalendar } from '../../profiles/calendar.js';
import type { ConfigVersion } from '../../profiles/config.js';
import type { ConfigFormat } from '../../profiles/format.js';
import type * as formatModule from '../../profiles/format.js';
import {
  buildProfileSet,
  defaultLogDir,
  defaultProgram,
  defaultRetention,
  levels,
} from '../../profiles/model.js';
import type { DomainSource, Level, ProfileSettings, Retention } from '../../profiles/model.js';
import { shellCommand } from '../../profiles/shell.js';
import { writeStateFile } from '../../state/write.js';
import { buildSystemdUnits, defaultUnitDir, enableCommands } from '../../profiles/systemd.js';
import { defaultLockDir } from '../../lock/lock.js';

/** The options of `unifi-backup generate` as commander hands them over. */
export interface GenerateOptions {
  readonly incr?: string;
  readonly diff?: string;
  readonly full?: string;
  readonly repository?: string;
  readonly passwordFile?: string;
  readonly source?: string;
  readonly keepHourly: string;
  readonly keepLast: string;
  readonly keepDaily: string;
  readonly keepWeekly: string;
  readonly keepMonthly: string;
  readonly keepYearly: string;
  readonly notifyConfig?: string;
  readonly notifyAlias?: string;
  readonly output?: string;
  readonly format?: string;
  readonly configVersion: string;
  readonly systemd?: string;
  readonly install?: boolean;
  readonly randomizedDelay?: string;
}

/** Finds the folder to back up for a domain when `--source` is not given. */
export type SourceLookup = (domain: string) => string | Promise<string>;

export interface GenerateDependencies {
  readonly runner?: Runner;
  readonly resolveSource?: SourceLookup;
  /** Where `--install` writes units; tests point it at a temporary folder. */
  readonly unitDir?: string;
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
}

const domainPlaceholder = '{domain}';

function count(value: string, option: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${option} needs a whole number ≥ 0, not "${value}".`);
  return Number(value);
}

function retentionFrom(options: GenerateOptions): Retention {
  return {
    hourly: count(options.keepHourly, '--keep-hourly'),
    last: count(options.keepLast, '--keep-last'),
    daily: count(options.keepDaily, '--keep-daily'),
    weekly: count(options.keepWeekly, '--keep-weekly'),
    monthly: count(options.keepMonthly, '--keep-monthly'),
    yearly: count(options.keepYearly, '--keep-yearly'),
  };
}

async function schedulesFrom(
  options: GenerateOptions,
  runner: Runner,
): Promise<Partial<Record<Level, string>>> {
  const schedules: Partial<Record<Level, string>> = {};
  for (const level of levels) {
    const schedule = options[level];
    if (schedule === undefined) continue;
    await requireCalendar(schedule, `--${level}`, runner);
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

async function sourcesFor(
  domains: readonly string[],
  source: string | undefined,
  lookup: SourceLookup,
): Promise<DomainSource[]> {
  if (source !== undefined && domains.length > 1 && !source.includes(domainPlaceholder)) {
    throw new UsageError(
      `--source ${source} would back up the same folder for ${domains.length} domains; ` +
        `put ${domainPlaceholder} in it (e.g. /storage/kvm/instances/${domainPlaceholder}) or generate one domain at a time.`,
    );
  }
  const targets: DomainSource[] = [];
  for (const domain of domains) {
    const folder = source === undefined ? await lookup(domain) : source.replaceAll(domainPlaceholder, domain);
    targets.push({ domain, source: folder });
  }
  return targets;
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Replaces the file in one step, so resticprofile never reads half of it; private, as it may hold credentials. */
async function writeWhole(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  writeStateFile(file, text);
}

function randomizedDelay(value: string | undefined): number | undefined {
  return value === undefined ? undefined : count(value, '--randomized-delay');
}

async function generateUnits(
  domains: readonly string[],
  options: GenerateOptions,
  schedules: Partial<Record<Level, string>>,
  dependencies: GenerateDependencies,
): Promise<void> {
  const out = dependencies.stdout ?? ((text: string) => process.stdout.write(text));
  if (options.output !== undefined) {
    throw new UsageError('--output is for resticprofile files; systemd units go to the --systemd folder.');
  }
  if (options.install === true && options.systemd !== undefined) {
    throw new UsageError(
      'give either --systemd DIR (write units there) or --install (write them to systemd).',
    );
  }
  if (Object.keys(schedules).length === 0) {
    throw new UsageError('systemd units need at least one schedule: --incr, --diff or --full.');
  }
  const delay = randomizedDelay(options.randomizedDelay);
  const units = buildSystemdUnits(
    {
      schedules,
      program: defaultProgram,
      lockDir: defaultLockDir,
      ...(delay === undefined ? {} : { randomizedDelaySec: delay }),
    },
    domains,
  );
  const folder = options.systemd ?? dependencies.unitDir ?? defaultUnitDir;
  await mkdir(folder, { recursive: true });
  for (const unit of units) {
    await writeWhole(join(folder, unit.name), unit.text);
    out(`wrote ${join(folder, unit.name)}\n`);
  }
  const commands = enableCommands(units).map((argv) => shellCommand(argv));
  if (options.install === true) {
    out(`\nEnable the timers with:\n${commands.map((line) => `  ${line}\n`).join('')}`);
  } else {
    out(
      `\nInstall them with:\n  cp ${units.map((unit) => shellCommand([join(folder, unit.name)])).join(' ')} ` +
        `${defaultUnitDir}/\n${commands.map((line) => `  ${line}\n`).join('')}`,
    );
  }
}

async function generate(
  domains: readonly string[],
  options: GenerateOptions,
  dependencies: GenerateDependencies & { readonly resolveSource: SourceLookup },
): Promise<void> {
  const runner = dependencies.runner ?? execaRunner;
  const schedules = await schedulesFrom(options, runner);
  if (options.systemd !== undefined || options.install === true) {
    await generateUnits(domains, options, schedules, dependencies);
    return;
  }
  if (options.randomizedDelay !== undefined) {
    throw new UsageError('--randomized-delay applies to systemd units (--systemd DIR or --install).');
  }
  if (options.notifyAlias !== undefined && options.notifyConfig === undefined) {
    throw new UsageError('--notify-alias needs --notify-config FILE too.');
  }
  // The YAML and TOML parsers load only when a profile is rendered (CLI start-up stays lean).
  const formats = await import('../../profiles/format.js');
  const { renderConfig } = formats;
  const format = formatFrom(options, formats);
  const version = versionFrom(options);
  const settings: ProfileSettings = {
    schedules,
    retention: retentionFrom(options),
    program: defaultProgram,
    lockDir: defaultLockDir,
    logDir: defaultLogDir,
    ...(options.repository === undefined ? {} : { repository: options.repository }),
    ...(options.passwordFile === undefined ? {} : { passwordFile: options.passwordFile }),
    ...(options.notifyConfig === undefined
      ? {}
      : {
          notify: {
            config: options.notifyConfig,
            ...(options.notifyAlias === undefined ? {} : { alias: options.notifyAlias }),
          },
        }),
  };
  const targets = await sourcesFor(domains, options.source, dependencies.resolveSource);
  const set = buildProfileSet(settings, targets);
  const out = dependencies.stdout ?? ((text: string) => process.stdout.write(text));
  const err = dependencies.stderr ?? ((text: string) => process.stderr.write(text));
  if (options.output === undefined) {
    out(renderConfig(set, version, format).text);
    return;
  }
  const existing = await readIfPresent(options.output);
  const rendered = renderConfig(set, version, format, existing, options.output);
  for (const note of rendered.notes) err(`${note}\n`);
  await writeWhole(options.output, rendered.text);
  out(
    `${existing === undefined ? 'wrote' : 'updated'} ${options.output}: ${Object.keys(set.profiles).join(', ')}\n`,
  );
}

export function generateCommand(dependencies: GenerateDependencies = {}): Command {
  return new Command('generate')
    .description('Write resticprofile profiles (or systemd timers) that back up domains on a schedule')
    .argument('<domain...>', 'libvirt domains to schedule')
    .option(
      '-i, --incr <schedule>',
      'incremental backup schedule (systemd OnCalendar), e.g. "Mon..Fri 8,12,16,20:00"',
    )
    .option('-d, --diff <schedule>', 'differential backup schedule, e.g. "Mon..Fri 21:00"')
    .option('-f, --full <schedule>', 'full backup schedule, e.g. "Sat 20:00"')
    .option('--repository <repo>', 'restic repository')
    .option('--password-file <file>', 'restic repository password file')
    .option(
      '--source <dir>',
      `folder to back up (default: the domain's folder); ${domainPlaceholder} is replaced`,
    )
    .option('--keep-hourly <n>', 'snapshots to keep per level: hourly', String(defaultRetention.hourly))
    .option('--keep-last <n>', 'last', String(defaultRetention.last))
    .option('--keep-daily <n>', 'daily', String(defaultRetention.daily))
    .option('--keep-weekly <n>', 'weekly', String(defaultRetention.weekly))
    .option('--keep-monthly <n>', 'monthly', String(defaultRetention.monthly))
    .option('--keep-yearly <n>', 'yearly', String(defaultRetention.yearly))
    .option('--notify-config <file>', 'notify after each run with `unifi-backup notify send --config FILE`')
    .option('--notify-alias <alias>', 'notification alias from the notify config')
    .option('--output <file>', 'write or update this file instead of printing (keeps what is there)')
    .option('--format <format>', 'yaml, toml or json (default: from --output, else yaml)')
    .option('--config-version <version>', 'resticprofile configuration version, 1 or 2', '1')
    .option('--systemd <dir>', 'write systemd services and timers to DIR instead of resticprofile profiles')
    .option('--install', `write systemd units to ${defaultUnitDir} and print the systemctl commands`)
    .option('--randomized-delay <seconds>', 'RandomizedDelaySec= of the systemd timers')
    .action(async (domains: string[], options: GenerateOptions, command: Command) => {
      const resolveSource = dependencies.resolveSource ?? domainFolderLookup(globalOptions(command));
      await generate(domains, options, { ...dependencies, resolveSource });
    });
}
