/** The verdict on one systemd `OnCalendar` expression; `elapses` are the next times it fires. */
export type CalendarCheck =
  | { readonly valid: true; readonly normalized?: string; readonly elapses?: readonly Date[] }
  | { readonly valid: false; readonly reason: string };

/** Closer runs than this need --force: a backup level every few minutes is a typo, not a plan. */
export const shortestInterval = 15 * 60_000;

const shorthands = new Set([
  'minutely',
  'hourly',
  'daily',
  'monthly',
  'weekly',
  'yearly',
  'annually',
  'quarterly',
  'semiannually',
]);

const weekdayNames: readonly (readonly [string, string])[] = [
  ['mon', 'monday'],
  ['tue', 'tuesday'],
  ['wed', 'wednesday'],
  ['thu', 'thursday'],
  ['fri', 'friday'],
  ['sat', 'saturday'],
  ['sun', 'sunday'],
];

interface Field {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly fractional?: boolean;
  readonly year?: boolean;
}

const year: Field = { name: 'year', min: 1970, max: 2199, year: true };
const month: Field = { name: 'month', min: 1, max: 12 };
const day: Field = { name: 'day', min: 1, max: 31 };
const hour: Field = { name: 'hour', min: 0, max: 23 };
const minute: Field = { name: 'minute', min: 0, max: 59 };
const second: Field = { name: 'second', min: 0, max: 59, fractional: true };

class CalendarSyntaxError extends Error {}

function weekdayIndex(token: string): number {
  const lower = token.toLowerCase();
  const index = weekdayNames.findIndex(([short, long]) => lower === short || lower === long);
  if (index < 0) throw new CalendarSyntaxError(`"${token}" is not a weekday (use Mon, Tue, … or Monday, …)`);
  return index;
}

function checkWeekdays(token: string): void {
  for (const item of token.split(',')) {
    // systemd still accepts the older "Mon-Fri" spelling of a range.
    const [from, to, ...rest] = item.split(/\.\.|-/);
    if (from === undefined || rest.length > 0) throw new CalendarSyntaxError(`bad weekday range "${item}"`);
    const start = weekdayIndex(from);
    if (to !== undefined && weekdayIndex(to) < start) {
      throw new CalendarSyntaxError(`weekday range "${item}" runs backwards (systemd weeks start on Monday)`);
    }
  }
}

function parseNumber(text: string, field: Field, what: string): number {
  const pattern = field.fractional ? /^\d+(\.\d+)?$/ : /^\d+$/;
  if (!pattern.test(text))
    throw new CalendarSyntaxError(`"${text}" is not a number in the ${field.name} of ${what}`);
  let value = Number(text);
  // systemd reads two-digit years as 1970–2069, like strptime's %y.
  if (field.year && text.length <= 2) value += value < 70 ? 2000 : 1900;
  if (value < field.min || value >= field.max + 1) {
    throw new CalendarSyntaxError(
      `${field.name} ${text} in "${what}" is out of range (${field.min}..${field.max})`,
    );
  }
  return value;
}

function checkComponent(text: string, field: Field, what: string): void {
  if (text === '') throw new CalendarSyntaxError(`the ${field.name} of "${what}" is empty`);
  for (const item of text.split(',')) {
    if (item === '*') continue;
    const [range, step, ...extra] = item.split('/');
    if (range === undefined || extra.length > 0) throw new CalendarSyntaxError(`bad ${field.name} "${item}"`);
    if (range === '*') {
      throw new CalendarSyntaxError(`"${item}": a repetition needs a start value (write 0/${step ?? ''})`);
    }
    const [from, to, ...more] = range.split('..');
    if (from === undefined || more.length > 0)
      throw new CalendarSyntaxError(`bad ${field.name} range "${item}"`);
    const start = parseNumber(from, field, what);
    if (to !== undefined && parseNumber(to, field, what) < start) {
      throw new CalendarSyntaxError(`${field.name} range "${range}" runs backwards`);
    }
    if (step !== undefined) {
      const stepPattern = field.fractional ? /^\d+(\.\d+)?$/ : /^\d+$/;
      if (!stepPattern.test(step) || Number(step) <= 0) {
        throw new CalendarSyntaxError(`repetition "/${step}" in "${item}" must be a positive number`);
      }
    }
  }
}

function checkDate(token: string): void {
  let text = token;
  let lastDays: string | undefined;
  const tilde = text.indexOf('~');
  if (tilde >= 0) {
    lastDays = text.slice(tilde + 1);
    text = text.slice(0, tilde);
  }
  const parts = text.split('-');
  if (lastDays !== undefined) parts.push(lastDays);
  const [first, second, third, ...extra] = parts;
  if (first === undefined || second === undefined || extra.length > 0) {
    throw new CalendarSyntaxError(
      `bad date "${token}" (use [YYYY-]MM-DD, each part a number, list, range or *)`,
    );
  }
  if (third === undefined) {
    // "MM-DD", or "*-*" which systemd also reads as any month, any day.
    checkComponent(first, month, token);
    checkComponent(second, day, token);
  } else {
    checkComponent(first, year, token);
    checkComponent(second, month, token);
    checkComponent(third, day, token);
  }
}

function checkTime(token: string): void {
  const parts = token.split(':');
  const [h, m, s, ...extra] = parts;
  if (h === undefined || m === undefined || extra.length > 0) {
    throw new CalendarSyntaxError(`bad time "${token}" (use HH:MM or HH:MM:SS)`);
  }
  checkComponent(h, hour, token);
  checkComponent(m, minute, token);
  if (s !== undefined) checkComponent(s, second, token);
}

function isTimezone(token: string): boolean {
  if (token.toUpperCase() === 'UTC') return true;
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(token)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: token });
    return true;
  } catch {
    return false;
  }
}

function checkTokens(tokens: readonly string[]): void {
  let rest = [...tokens];
  const last = rest.at(-1);
  if (rest.length > 1 && last !== undefined && !/[-:~]/.test(last) && /^[A-Za-z]/.test(last)) {
    if (!isTimezone(last)) {
      const weekday = weekdayNames.some(([short, long]) => [short, long].includes(last.toLowerCase()));
      throw new CalendarSyntaxError(
        weekday
          ? `"${last}" is out of place: weekdays come first, then date, then time`
          : `"${last}" is not a known timezone`,
      );
    }
    rest = rest.slice(0, -1);
  }
  const [head] = rest;
  if (head !== undefined && rest.length === 1 && shorthands.has(head.toLowerCase())) return;
  if (head !== undefined && shorthands.has(head.toLowerCase())) {
    throw new CalendarSyntaxError(`"${head}" stands alone: only a timezone may follow it`);
  }
  let weekdays = false;
  let date = false;
  let time = false;
  for (const token of rest) {
    if (/^[A-Za-z]/.test(token)) {
      if (weekdays || date || time) {
        throw new CalendarSyntaxError(
          `"${token}" is out of place: weekdays come first, then date, then time`,
        );
      }
      checkWeekdays(token);
      weekdays = true;
    } else if (token.includes(':')) {
      if (time) throw new CalendarSyntaxError(`two times given ("${token}")`);
      checkTime(token);
      time = true;
    } else if (/[-~]/.test(token)) {
      if (date || time)
        throw new CalendarSyntaxError(`"${token}" is out of place: the date comes before the time`);
      checkDate(token);
      date = true;
    } else {
      throw new CalendarSyntaxError(
        `"${token}" is neither a weekday, a date (YYYY-MM-DD) nor a time (HH:MM)`,
      );
    }
  }
  if (!weekdays && !date && !time) throw new CalendarSyntaxError('no weekday, date or time given');
}

/**
 * Checks an `OnCalendar` expression without systemd, covering the forms of systemd.time(7):
 * shorthands (`daily`…), weekday lists and ranges, `[YYYY-]MM-DD` and `HH:MM[:SS]` with `*`,
 * lists, `..` ranges, `/` repetitions and `~` last days, and an optional timezone.
 */
export function parseCalendar(expression: string): CalendarCheck {
  if (expression.trim() === '') return { valid: false, reason: 'the schedule is empty' };
  if (expression !== expression.trim()) {
    return { valid: false, reason: 'leading or trailing spaces are not allowed' };
  }
  try {
    checkTokens(expression.split(/\s+/));
    return { valid: true };
  } catch (error) {
    if (error instanceof CalendarSyntaxError) return { valid: false, reason: error.message };
    throw error;
  }
}

/** The elapses `systemd-analyze calendar` printed (run with TZ=UTC); none for "never". */
export function parseElapses(output: string): Date[] {
  const elapses: Date[] = [];
  for (const match of output.matchAll(
    /(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC/g,
  )) {
    elapses.push(new Date(`${match[1]}T${match[2]}Z`));
  }
  return elapses;
}

/** Why a valid schedule needs --force, if it does (pure). */
export function scheduleWarning(check: CalendarCheck): string | undefined {
  if (!check.valid || check.elapses === undefined) return undefined;
  if (check.elapses.length === 0) return 'it never elapses (a date in the past?)';
  let shortest = Infinity;
  for (let i = 1; i < check.elapses.length; i++) {
    const gap = (check.elapses[i]?.getTime() ?? 0) - (check.elapses[i - 1]?.getTime() ?? 0);
    shortest = Math.min(shortest, gap);
  }
  if (shortest < shortestInterval) {
    const seconds = Math.round(shortest / 1000);
    return `it fires ${seconds < 60 ? `${seconds} s` : `${Math.round(seconds / 60)} min`} apart, more often than every ${shortestInterval / 60_000} minutes`;
  }
  return undefined;
}
