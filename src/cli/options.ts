import { Option } from 'commander';
import { UsageError } from '../errors.js';

/** Options several verbs share, and the parsers of option values: one wording for every verb. */

/** Commander's accumulator for a repeatable option. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** The value of an option that takes a whole number ≥ `min`, or a usage error naming the option. */
export function wholeNumber(option: string, value: string, min: number): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`${option} must be a whole number ≥ ${min}, not '${value}'`);
  return n;
}

export function excludeOption(): Option {
  return new Option('--exclude <disk>', 'leave a disk (target like vdb, or its file) out; repeatable')
    .argParser(collect)
    .default([]);
}

export function quiesceOption(): Option {
  return new Option('-q, --quiesce', 'freeze guest filesystems through the guest agent during the snapshot');
}

export function maxIncrOption(): Option {
  return new Option('--max-incr <n>', 'do a diff instead when the chain would hold more than N incr layers')
    .argParser((value) => wholeNumber('--max-incr', value, 1))
    .env('UNIFI_BACKUP_MAX_INCR');
}

export function overlayDirOption(): Option {
  return new Option(
    '--overlay-dir <dir>',
    'folder for the overlays of block-device disks (default: overlay-dir of the config file)',
  );
}
