import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { programRunner } from '../../src/host/runner.js';
import type { Runner } from '../../src/host/runner.js';
import { checkCalendar, requireCalendar } from '../../src/host/calendar.js';
import { parseCalendar } from '../../src/profiles/calendar.js';

const absent: Runner = () => Promise.reject(new Error('cannot run systemd-analyze: ENOENT'));

const valid = [
  'Mon..Fri 8,12,16,20:00',
  'Mon..Fri 21:00',
  'Sat 20:00',
  'Sat',
  'Mon,Wed..Fri *-*-1..7 4:00',
  'mon-fri 8:00',
  'Monday 8:00',
  'Sat..Sun',
  '*-*-* *:*:*',
  '*:0/15',
  '*:00,15,30,45',
  '8..20/4:00',
  '0..23/2:00',
  '*-*~03',
  '*-02~01',
  '2024-*-01',
  '24-01-01',
  '1-1',
  '*-*',
  '12:00:00.5',
  '*:00:0.5/1.5',
  '2024-01-01 8:00:00.123456',
  'hourly',
  'daily',
  'weekly',
  'monthly',
  'yearly',
  'annually',
  'quarterly',
  'semiannually',
  'minutely',
  'HOURLY',
  'hourly UTC',
  'Mon 8:00 utc',
  '8:00 Europe/Warsaw',
  'Mon..Fri 8,12,16,20:00 Europe/Warsaw',
  'Sat  20:00',
];

const invalid: readonly (readonly [string, RegExp])[] = [
  ['', /empty/],
  ['  daily  ', /spaces/],
  ['Fri..Mon', /backwards/],
  ['5..1:00', /backwards/],
  ['Mon..Fri 25:00', /hour 25 .* out of range/],
  ['8:60', /minute 60 .* out of range/],
  ['8:00:60', /second 60 .* out of range/],
  ['*-13-01', /month 13/],
  ['*-*-0', /day 0/],
  ['*-*-32', /day 32/],
  ['1969-01-01', /year 1969/],
  ['2200-01-01', /year 2200/],
  ['*/2:00', /repetition needs a start value/],
  ['*-1..5/0-1', /positive number/],
  ['Su 8:00', /not a weekday/],
  ['Thurs 8:00', /not a weekday/],
  ['Sat 20', /neither a weekday, a date .* nor a time/],
  ['8', /neither/],
  ['20:00 Sat', /out of place/],
  ['Mon 2024-1-1 8:00 8:00', /two times|timezone|out of place/],
  ['weekly Mon', /out of place/],
  ['daily 8:00', /stands alone/],
  ['8:00 Nowhere/Land', /not a known timezone/],
  ['Mon 8:00 XYZ', /not a known timezone/],
  ['1:2:3:4', /bad time/],
  ['now', /timezone|weekday/],
];

describe('parseCalendar (without systemd)', () => {
  it.each(valid)('accepts %j', (expression) => {
    expect(parseCalendar(expression)).toEqual({ valid: true });
  });

  it.each(invalid)('rejects %j with the reason', (expression, reason) => {
    const check = parseCalendar(expression);
    expect(check.valid).toBe(false);
    if (!check.valid) expect(check.reason).toMatch(reason);
  });

  it('falls back to the parser when systemd-analyze cannot run', async () => {
    expect(await checkCalendar('Sat 20:00', absent)).toEqual({ valid: true });
    const check = await checkCalendar('Sat 25:00', absent);
    expect(check).toMatchObject({ valid: false, reason: expect.stringMatching(/hour 25/) as unknown });
  });

  it('rejects a bad schedule with a usage error naming the option and the reason', async () => {
    const rejection = requireCalendar('Mon..Fri 8,12,16,24:00', '--incr', absent);
    await expect(rejection).rejects.toBeInstanceOf(UsageError);
    await expect(rejection).rejects.toThrow(/--incr "Mon..Fri 8,12,16,24:00" .*hour 24 .* out of range/);
  });
});

// One systemd-analyze run per expression: slow on a loaded machine.
describe('checkCalendar with systemd-analyze', { timeout: 60_000 }, () => {
  it('agrees with systemd-analyze on every table entry', async () => {
    const checks = await Promise.all(
      [...valid, ...invalid.map(([expression]) => expression)].map(async (expression) => ({
        expression,
        check: await checkCalendar(expression, programRunner),
      })),
    );
    for (const { expression, check } of checks)
      expect(check, expression).toMatchObject({ valid: valid.includes(expression) });
  });

  it("returns systemd's normalized form", async () => {
    expect(await checkCalendar('Mon..Fri 8,12,16,20:00', programRunner)).toMatchObject({
      valid: true,
      normalized: 'Mon..Fri *-*-* 08,12,16,20:00:00',
    });
  });

  it('reads the coming elapses, whatever the local timezone', async () => {
    const check = await checkCalendar('*-*-* 06:30 UTC', programRunner);
    const elapses = check.valid ? (check.elapses ?? []) : [];
    expect(elapses.length).toBeGreaterThan(10);
    for (const elapse of elapses) expect(elapse.toISOString()).toMatch(/T06:30:00\.000Z$/);
  });

  it.each([
    ['*:0/5', /fires 5 min apart, more often than every 15 minutes/],
    ['*:*:0/30', /fires 30 s apart/],
    ['2001-01-01 00:00', /never elapses/],
    ['Mon..Fri 8:00,10', /fires 10 min apart/],
  ])('needs --force for %j', async (schedule, reason) => {
    await expect(requireCalendar(schedule, '--incr', programRunner)).rejects.toThrow(reason);
    await expect(requireCalendar(schedule, '--incr', programRunner)).rejects.toThrow(/--force/);
    expect(await requireCalendar(schedule, '--incr', programRunner, true)).toBeUndefined();
  });

  it('accepts every quarter hour without --force, and says when it could not check how often', async () => {
    expect(await requireCalendar('*:0/15', '--incr', programRunner)).toBeUndefined();
    expect(await requireCalendar('*:0/5', '--incr', absent)).toMatch(/systemd-analyze is not installed/);
  });

  it("explains systemd's bare rejection", async () => {
    const check = await checkCalendar('Sat 25:00', programRunner);
    expect(check).toMatchObject({ valid: false, reason: expect.stringMatching(/hour 25/) as unknown });
  });

  it('passes the expression as one argument after --', async () => {
    const seen: (readonly string[])[] = [];
    const runner: Runner = (request) => {
      seen.push(request.argv);
      return Promise.resolve({
        argv: request.argv,
        exitCode: 0,
        stdout: 'Normalized form: *-*-* 00:00:00\n',
        stderr: '',
      });
    };
    await checkCalendar('daily', runner);
    expect(seen).toEqual([['systemd-analyze', 'calendar', '--iterations=60', '--', 'daily']]);
  });
});
