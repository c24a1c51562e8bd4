import { describe, expect, it } from 'vitest';
import { deviceToList } from '../../../src/cli/commands/restore.js';
import { UsageError } from '../../../src/errors.js';

describe('--device-to', () => {
  it('takes TARGET=/DEVICE, repeated for several disks', () => {
    const first = deviceToList('vda=/dev/vg0/web=new', undefined);
    expect([...deviceToList('vdb=/dev/sdc', first)]).toEqual([
      ['vda', '/dev/vg0/web=new'],
      ['vdb', '/dev/sdc'],
    ]);
  });

  it('refuses a missing target, a relative device and a disk named twice', () => {
    for (const value of ['=/dev/sdc', 'vda', 'vda=sdc', 'vda='])
      expect(() => deviceToList(value, undefined)).toThrow(UsageError);
    expect(() => deviceToList('vda=/dev/sdd', new Map([['vda', '/dev/sdc']]))).toThrow('named twice');
  });
});
