import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { snapshotTags } from '../../src/ops/run.js';

describe('snapshot tags', () => {
  it('are the domain, kvm and the level', () => {
    expect(snapshotTags('web "1"', 'incr')).toEqual(['web "1"', 'kvm', 'incr']);
  });

  it("refuse a domain whose retention would reach other domains' snapshots", () => {
    for (const name of ['kvm', 'incr', 'diff', 'full', 'kvm-device'])
      expect(() => snapshotTags(name, 'incr')).toThrow(
        new UserError(
          `domain '${name}': its name is also a tag of every snapshot (kvm, incr, diff, full, kvm-device), so its ` +
            "retention would reach other domains' snapshots. Nothing was changed. Rename the domain (virsh domrename).",
        ),
      );
    expect(() => snapshotTags('a,b', 'incr')).toThrow(/holds a comma/);
  });
});
