import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { UserError } from '../../errors.js';
import { programRunner } from '../../host/runner.js';
import type { Runner } from '../../host/runner.js';
import { checkCalendar } from '../../host/calendar.js';
import type { InstalledSchedule } from '../../profiles/installed.js';
import { defaultUnitDir } from '../../profiles/systemd.js';
import type { RecordedVerb } from '../../ops/run-record.js';
import { formatTime, table } from '../format.js';
import { globalOptions } from '../context.js';
import { collect } from '../options.js';

/** Where resticprofile looks for its configuration when run as root. */
const defaultProfileFiles = ['yaml', 'yml', 'toml', 'conf', 'json'].map(
  (ext) => `/etc/resticprofile/profiles.${ext}`,
);

export interface LastRun {
  readonly time?: string;
  readonly result: string;
}

export interface ScheduleRow extends InstalledSchedule {
  readonly next?: string;
  readonly last?: LastRun;
  /** What could not be read about this schedule. */
  readonly problem?: string;
}

interface ListOptions {
  readonly profiles: string[];
  readonly unitDir: string;
}

/** The next time any of the schedules fires, computed by systemd-analyze (no running systemd needed). */
async function nextElapse(schedules: readonly string[], runner: Runner): Promise<string | undefined> {
  let next: Date | undefined;
  for (const schedule of schedules) {
    const check = await checkCalendar(schedule, runner);
    const first = check.valid ? check.elapses?.[0] : undefined;
    if (first !== undefined && (next === undefined || first < next)) next = first;
  }
  return next?.toISOString();
}

async function systemdLastRun(entry: InstalledSchedule, runner: Runner): Promise<LastRun | undefined> {
  // Without a running systemd there is no last run to ask about.
  if (!existsSync('/run/systemd/system')) return undefined;
  const service = entry.name.replace(/\.timer$/, '.service');
  const result = await runner({
    argv: ['systemctl', 'show', '--property=Result', '--property=ExecMainExitTimestamp', '--', service],
    timeoutMs: 10_000,
  });
  if (result.exitCode !== 0) return undefined;
  const properties = new Map(
    result.stdout
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1).trim()]),
  );
  const value = (key: string) => properties.get(key) ?? '';
  const time = value('ExecMainExitTimestamp');
  if (time === '') return undefined;
  return { time, result: value('Result') === 'success' ? 'ok' : value('Result') || 'unknown' };
}

async function resticprofileLastRun(entry: InstalledSchedule): Promise<LastRun | undefined> {
  if (entry.statusFile === undefined) return undefined;
  // Loaded here, not at start-up: most invocations never read a state file (its schema needs zod).
  const { lastProfileBackup } = await import('../../profiles/status.js');
  const backup = lastProfileBackup(entry.statusFile, entry.name);
  if (backup === undefined) return undefined;
  return { time: backup.time, result: backup.success ? 'ok' : `failed: ${backup.error ?? ''}`.trim() };
}

/** The newest record of `verb` at the schedule's level in the tool's own run records. */
async function recordedLastRun(
  entry: InstalledSchedule,
  verb: RecordedVerb,
  stateDir: string,
): Promise<LastRun | undefined> {
  const { lastRuns } = await import('../../ops/run-record.js');
  const record = lastRuns(stateDir, entry.domain)
    .filter((r) => r.verb === verb && r.level === entry.level)
    .at(-1);
  if (record === undefined) return undefined;
  return {
    time: record.end,
    result: record.result === 'ok' ? 'ok' : `failed: ${record.error ?? ''}`.trim(),
  };
}

/**
 * The last run of a schedule and its result. A timer runs `unifi-backup run LEVEL`, whose run
 * record says it all (systemd's own word when there is none); a profile runs `backup LEVEL` and
 * then restic, so resticprofile's status file comes first, then the record of the backup.
 */
export async function lastRun(
  entry: InstalledSchedule,
  runner: Runner,
  stateDir: string,
): Promise<LastRun | undefined> {
  return entry.from === 'systemd'
    ? ((await recordedLastRun(entry, 'run', stateDir)) ?? (await systemdLastRun(entry, runner)))
    : ((await resticprofileLastRun(entry)) ?? (await recordedLastRun(entry, 'backup', stateDir)));
}

async function installedSchedules(
  options: ListOptions,
): Promise<{ found: InstalledSchedule[]; problems: string[] }> {
  const { profileSchedules, timerSchedule } = await import('../../profiles/installed.js');
  const { formatFromPath, parseConfigText } = await import('../../profiles/format.js');
  const found: InstalledSchedule[] = [];
  const problems: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(options.unitDir).filter(
      (name) => name.startsWith('unifi-backup-') && name.endsWith('.timer'),
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      problems.push(`${options.unitDir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  for (const name of names.sort()) {
    const file = join(options.unitDir, name);
    const entry = timerSchedule(name, readFileSync(file, 'utf8'), file);
    if (entry !== undefined) found.push(entry);
  }
  const files =
    options.profiles.length > 0 ? options.profiles : defaultProfileFiles.filter((f) => existsSync(f));
  for (const file of files) {
    try {
      const text = readFileSync(file, 'utf8');
      found.push(...profileSchedules(parseConfigText(text, formatFromPath(file) ?? 'yaml', file), file));
    } catch (error) {
      problems.push(
        error instanceof UserError
          ? error.message
          : `${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  }
  return { found, problems };
}

async function describe(entry: InstalledSchedule, runner: Runner, stateDir: string): Promise<ScheduleRow> {
  const next = await nextElapse(entry.schedules, runner);
  try {
    const last = await lastRun(entry, runner, stateDir);
    return { ...entry, ...(next === undefined ? {} : { next }), ...(last === undefined ? {} : { last }) };
  } catch (error) {
    return { ...entry, ...(next === undefined ? {} : { next }), problem: (error as Error).message };
  }
}

function humanLines(rows: readonly ScheduleRow[]): string[] {
  if (rows.length === 0) return ['no scheduled backups found (generate them with: unifi-backup generate)'];
  const when = (iso: string | undefined) => (iso === undefined ? '-' : formatTime(new Date(iso)));
  return table([
    ['DOMAIN', 'LEVEL', 'FROM', 'SCHEDULE', 'NEXT', 'LAST RUN', 'RESULT'],
    ...rows.map((row) => [
      row.domain,
      row.level,
      row.from,
      row.schedules.join(' | '),
      when(row.next),
      row.last?.time ?? '-',
      row.problem === undefined ? (row.last?.result ?? 'never ran') : `unreadable: ${row.problem}`,
    ]),
  ]);
}

export function scheduleCommand(runner: Runner = programRunner): Command {
  const list = new Command('list')
    .summary("every domain's scheduled backups: level, next run, last run and its result")
    .addOption(
      new Option(
        '--profiles <file>',
        'resticprofile file to read; repeatable (default: /etc/resticprofile/profiles.*)',
      )
        .argParser(collect)
        .default([]),
    )
    .option('--unit-dir <dir>', 'where the systemd units are', defaultUnitDir)
    .action(async (options: ListOptions, command: Command) => {
      const global = globalOptions(command);
      const { found, problems } = await installedSchedules(options);
      const rows: ScheduleRow[] = [];
      for (const entry of found) rows.push(await describe(entry, runner, global.stateDir));
      if (global.json) process.stdout.write(`${JSON.stringify({ schedules: rows, problems }, null, 2)}\n`);
      else {
        process.stdout.write(
          humanLines(rows)
            .map((line) => `${line}\n`)
            .join(''),
        );
        for (const problem of problems) process.stderr.write(`cannot read: ${problem}\n`);
      }
      if (problems.length > 0) process.exitCode = 1;
    });
  return new Command('schedule')
    .summary('show the scheduled backups (systemd timers and resticprofile profiles)')
    .addCommand(list);
}
