import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import {
  domainFileName,
  domainTag,
  profileFileName,
  replicaFileName,
  replicaLogName,
  snapshotTags,
} from '../src/naming.js';

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

describe('a domain tag', () => {
  it('is the name itself', () => {
    expect(domainTag('web 1.example', 'unused')).toBe('web 1.example');
  });

  it('refuses a comma (restic would split it into two tags) with the caller’s remedy', () => {
    expect(() => domainTag('a,kvm', 'Name the snapshot by its id: --from restic:ID.')).toThrow(
      new UserError(
        "domain 'a,kvm': its name holds a comma, which restic tags cannot hold. Nothing was changed. " +
          'Name the snapshot by its id: --from restic:ID.',
      ),
    );
  });
});

describe('file names', () => {
  // Each kind keeps the encoding existing installations wrote: these are the names on their disks.
  it('of locks, journals and records: URI-encoded, a leading dot encoded', () => {
    expect(domainFileName('web1', '.lock')).toBe('web1.lock');
    expect(domainFileName('..', '.json')).toBe('%2E..json');
    expect(domainFileName('a/b c.d', '.json')).toBe('a%2Fb%20c.d.json');
  });

  it('in a replica folder: URI-encoded, every dot encoded', () => {
    expect(replicaFileName('web1')).toBe('web1');
    expect(replicaFileName('a.b/c')).toBe('a%2Eb%2Fc');
    expect(replicaLogName('web 1', 'console.log')).toBe('web%201-console.log');
  });

  it('of profiles and units: only letters, digits, dot, underscore and dash stay', () => {
    expect(profileFileName('web-1_a.b')).toBe('web-1_a.b');
    expect(profileFileName('a b/c%')).toBe('a%20b%2fc%25');
  });

  it('never collide between two domains', () => {
    const names = ['a.b', 'a%2Eb', 'a b', 'a%20b', '.a', '%2Ea'];
    for (const encode of [(n: string) => domainFileName(n, ''), replicaFileName, profileFileName])
      expect(new Set(names.map(encode)).size).toBe(names.length);
  });
});
