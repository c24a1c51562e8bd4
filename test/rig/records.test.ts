import { describe, expect, it } from 'vitest';
import { judgeRecords, recordChecksum } from './records.js';

function record(seq: number, time = 1_700_000_000 + seq): string {
  return `${seq} ${time} ${recordChecksum(seq, time)}\n`;
}

function records(from: number, to: number): string {
  let text = '';
  for (let seq = from; seq <= to; seq += 1) text += record(seq);
  return text;
}

describe('recordChecksum', () => {
  it('is the first 8 hex digits of the md5 of "<seq> <time>", as busybox md5sum in the guest', () => {
    expect(recordChecksum(38, 1795704865)).toBe('95a89d24');
  });
});

describe('judgeRecords', () => {
  it('accepts an empty log', () => {
    expect(judgeRecords('')).toEqual({ ok: true, lastSeq: 0, count: 0, problems: [] });
  });

  it('accepts consecutive valid records', () => {
    expect(judgeRecords(records(1, 50))).toEqual({ ok: true, lastSeq: 50, count: 50, problems: [] });
  });

  it('accepts a torn final record without its newline', () => {
    const torn = record(4).slice(0, 13);
    expect(judgeRecords(records(1, 3) + torn)).toMatchObject({ ok: true, lastSeq: 3, count: 3 });
  });

  it('accepts NUL bytes a crash left at the end, with or without a torn record before them', () => {
    expect(judgeRecords(records(1, 3) + '\0'.repeat(40))).toMatchObject({ ok: true, lastSeq: 3 });
    expect(judgeRecords(records(1, 3) + '4 17000' + '\0'.repeat(40))).toMatchObject({ ok: true, lastSeq: 3 });
  });

  it('rejects a log that does not start at seq 1', () => {
    const verdict = judgeRecords(records(2, 5));
    expect(verdict.ok).toBe(false);
    expect(verdict.problems).toEqual(['line 1: seq 2 follows 0']);
  });

  it('rejects a gap and a repeated record', () => {
    expect(judgeRecords(records(1, 3) + records(5, 6)).problems).toEqual(['line 4: seq 5 follows 3']);
    expect(judgeRecords(records(1, 3) + record(3)).problems).toEqual(['line 4: seq 3 follows 3']);
  });

  it('rejects a complete record with a wrong checksum', () => {
    const verdict = judgeRecords(records(1, 2) + '3 1700000003 00000000\n' + record(4));
    expect(verdict).toMatchObject({ ok: false, lastSeq: 4, count: 3 });
    expect(verdict.problems).toEqual([
      'line 3: checksum mismatch in "3 1700000003 00000000"',
      'line 4: seq 4 follows 2',
    ]);
  });

  it('rejects NUL bytes or garbage before the end', () => {
    expect(judgeRecords(records(1, 2) + '\0\0\0\n' + record(3)).ok).toBe(false);
    expect(judgeRecords(records(1, 2) + 'hello\n').ok).toBe(false);
  });

  it('rejects a final partial record that is not the start of a record', () => {
    expect(judgeRecords(records(1, 2) + 'x\0\0').ok).toBe(false);
    expect(judgeRecords(records(1, 2) + '\0\0' + '3 1').ok).toBe(false);
  });
});
