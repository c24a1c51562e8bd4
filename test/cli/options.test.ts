import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { wholeNumber } from '../../src/cli/options.js';

describe('wholeNumber', () => {
  it('takes plain digits at or above the minimum', () => {
    expect(wholeNumber('--jobs', '4', 1)).toBe(4);
    expect(wholeNumber('--retries', '0', 0)).toBe(0);
  });

  it.each(['0', '-1', '1.5', '1e3', 'abc', '', '0x10', '99999999999999999999'])(
    "refuses '%s' for a minimum of 1 with one wording that names the option",
    (value) => {
      expect(() => wholeNumber('--max-incr', value, 1)).toThrow(UsageError);
      expect(() => wholeNumber('--max-incr', value, 1)).toThrow(
        `--max-incr must be a whole number ≥ 1, not '${value}'`,
      );
    },
  );
});
