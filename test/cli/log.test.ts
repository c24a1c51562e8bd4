import { describe, expect, it } from 'vitest';
import { createLogger, logOptions, underSystemd } from '../../src/cli/log.js';
import type { LogOptions } from '../../src/cli/log.js';

const time = new Date('2026-11-26T21:00:00.000Z');

function lines(options: LogOptions, use: (log: ReturnType<typeof createLogger>) => void): string {
  let text = '';
  use(
    createLogger(
      options,
      (t) => (text += t),
      () => time,
    ),
  );
  return text;
}

describe('log', () => {
  it('prints plain lines on a terminal: errors named, notes as they are, domains in front', () => {
    const text = lines({ format: 'human', journal: false }, (log) => {
      log.error('cannot read /etc/x');
      log.warn('unknown section');
      log.info('created restic repository /srv/r');
      log.error('no such domain', 'web1');
    });
    expect(text).toBe(
      'unifi-backup: cannot read /etc/x\n' +
        'unifi-backup: warning: unknown section\n' +
        'created restic repository /srv/r\n' +
        'web1: no such domain\n',
    );
  });

  it('prints one JSON object per line with time, level, domain when known and message', () => {
    const text = lines({ format: 'json', journal: true }, (log) => {
      log.error('two\nlines', 'web1');
      log.info('note');
    });
    const records = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    expect(records).toEqual([
      { time: '2026-11-26T21:00:00.000Z', level: 'error', domain: 'web1', message: 'two\nlines' },
      { time: '2026-11-26T21:00:00.000Z', level: 'info', message: 'note' },
    ]);
  });

  it('under systemd prefixes every line with its sd-daemon priority so journald keeps the level', () => {
    const text = lines({ format: 'human', journal: true }, (log) => {
      log.error('3 problems:\n  a: b');
      log.warn('w');
      log.info('i');
      log.debug('+ virsh list');
    });
    expect(text).toBe(
      '<3>unifi-backup: 3 problems:\n<3>  a: b\n<4>unifi-backup: warning: w\n<6>i\n<7>+ virsh list\n',
    );
  });

  it('knows systemd by $JOURNAL_STREAM or $INVOCATION_ID', () => {
    expect(underSystemd({})).toBe(false);
    expect(underSystemd({ JOURNAL_STREAM: '8:12345' })).toBe(true);
    expect(underSystemd({ INVOCATION_ID: 'abc' })).toBe(true);
    expect(logOptions(undefined, { INVOCATION_ID: 'abc' })).toEqual({ format: 'human', journal: true });
    expect(logOptions('json', {})).toEqual({ format: 'json', journal: false });
  });
});
