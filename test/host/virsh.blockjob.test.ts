import { describe, expect, it } from 'vitest';
import { parseBlockJobInfo } from '../../src/host/virsh.js';

describe('virsh blockjob --info --raw', () => {
  it('parses a job, and tells a ready one', () => {
    expect(
      parseBlockJobInfo(' type=Active Block Commit\n bandwidth=0\n cur=1048576\n end=1048576\n'),
    ).toEqual({
      type: 'Active Block Commit',
      cur: 1048576,
      end: 1048576,
      ready: true,
    });
    expect(parseBlockJobInfo(' type=Block Pull\n bandwidth=0\n cur=10\n end=400\n')?.ready).toBe(false);
  });

  it('is undefined when there is no job', () => {
    expect(parseBlockJobInfo('')).toBeUndefined();
    expect(parseBlockJobInfo('No current block job for vda')).toBeUndefined();
  });
});
