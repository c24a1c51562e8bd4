import { createHash } from 'node:crypto';

/** What the writer left in records.log (format: see guest/writer.sh). */
export interface RecordsVerdict {
  /** Every complete record is valid and the seqs run 1, 2, 3… with only a torn final record allowed. */
  readonly ok: boolean;
  /** The seq of the last valid record, 0 when there is none. */
  readonly lastSeq: number;
  /** The number of valid records. */
  readonly count: number;
  readonly problems: string[];
}

/** The guest's checksum of a record: the first 8 hex digits of md5("<seq> <unix-time>"). */
export function recordChecksum(seq: number, time: number): string {
  return createHash('md5').update(`${seq} ${time}`).digest('hex').slice(0, 8);
}

const recordPattern = /^(\d+) (\d+) ([0-9a-f]{8})$/;
const partialRecordPattern = /^(\d+( \d*( [0-9a-f]{0,8})?)?)?$/;

/** One complete record (a line without its newline), undefined when malformed or its checksum is wrong. */
export function parseRecord(line: string): { seq: number; time: number } | undefined {
  const match = recordPattern.exec(line);
  if (!match) return undefined;
  const seq = Number(match[1]);
  const time = Number(match[2]);
  return match[3] === recordChecksum(seq, time) ? { seq, time } : undefined;
}

/** Judges a records.log: a consistent prefix of what the writer wrote, or not. */
export function judgeRecords(text: string): RecordsVerdict {
  const problems: string[] = [];
  const lines = text.split('\n');
  // A crash may leave one torn record: text without its newline, or NUL bytes ext4 did not fill.
  const tail = (lines.pop() ?? '').replace(/\0+$/, '');
  if (!partialRecordPattern.test(tail))
    problems.push(`final partial record is not a record's start: ${JSON.stringify(tail)}`);
  let count = 0;
  let lastSeq = 0;
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    const record = parseRecord(line);
    if (record === undefined) {
      problems.push(
        `${where}: ${recordPattern.test(line) ? 'checksum mismatch in' : 'not a record:'} ${JSON.stringify(line)}`,
      );
      return;
    }
    if (record.seq !== lastSeq + 1) problems.push(`${where}: seq ${record.seq} follows ${lastSeq}`);
    lastSeq = record.seq;
    count += 1;
  });
  return { ok: problems.length === 0, lastSeq, count, problems };
}
