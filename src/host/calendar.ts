import { UsageError } from '../errors.js';
import type { CalendarCheck } from '../profiles/calendar.js';
import { parseCalendar, parseElapses, scheduleWarning } from '../profiles/calendar.js';
import type { Runner } from './runner.js';

/** How many coming elapses are looked at to judge how often a schedule fires. */
const elapseSample = 60;

/**
 * Asks `systemd-analyze calendar` when it can run; otherwise, or to explain a bare
 * "Invalid argument", falls back to {@link parseCalendar}.
 */
export async function checkCalendar(expression: string, runner: Runner): Promise<CalendarCheck> {
  const parsed = parseCalendar(expression);
  let result;
  try {
    result = await runner({
      argv: ['systemd-analyze', 'calendar', `--iterations=${elapseSample}`, '--', expression],
      timeoutMs: 10_000,
      // Elapses print in local time; UTC makes them one parseable form.
      env: { TZ: 'UTC' },
    });
  } catch {
    return parsed;
  }
  if (result.exitCode === 0) {
    const normalized = /Normalized form:\s*(.+)/.exec(result.stdout)?.[1]?.trim();
    return {
      valid: true,
      elapses: parseElapses(result.stdout),
      ...(normalized === undefined ? {} : { normalized }),
    };
  }
  const message = (result.stderr.trim() || result.stdout.trim()).split('\n')[0] ?? '';
  if (result.exitCode === 127 || /not found|No such file/i.test(message)) return parsed;
  if (!parsed.valid) return parsed;
  return { valid: false, reason: `systemd-analyze: ${message || `exit code ${result.exitCode}`}` };
}

/**
 * Throws a {@link UsageError} naming the option and the reason when the schedule is not valid, or
 * when it never elapses or fires more often than every 15 minutes and `force` is not given.
 * Returns a note when how often it fires could not be checked (no systemd-analyze).
 */
export async function requireCalendar(
  expression: string,
  option: string,
  runner: Runner,
  force = false,
): Promise<string | undefined> {
  const check = await checkCalendar(expression, runner);
  if (!check.valid) {
    throw new UsageError(
      `${option} "${expression}" is not a valid systemd calendar expression: ${check.reason}. ` +
        'See systemd.time(7), e.g. "Mon..Fri 8,12,16,20:00" or "Sat 20:00".',
    );
  }
  if (check.elapses === undefined)
    return `${option} "${expression}": systemd-analyze is not installed, so how often it fires was not checked.`;
  const warning = scheduleWarning(check);
  if (warning !== undefined && !force)
    throw new UsageError(`${option} "${expression}": ${warning}. Give --force if that is what you want.`);
  return undefined;
}
