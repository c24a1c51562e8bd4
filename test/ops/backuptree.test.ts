import { describe, expect, it } from 'vitest';
import { includePattern } from '../../src/host/restic.js';
import type { ResticSnapshot } from '../../src/host/restic.js';
import type { BackupTree } from '../../src/ops/backuptree.js';
import { chooseSnapshot, findDump, locate } from '../../src/ops/backuptree.js';

const snap = (id: string, hostname: string, minute: number): ResticSnapshot => ({
  id: `${id}${'0'.repeat(56)}`,
  shortId: id,
  time: new Date(2026, 0, 1, 0, minute),
  hostname,
  paths: [],
  tags: ['web'],
});

const tree = (types: Record<string, string>): BackupTree => ({
  what: 'restic snapshot 1 of host a',
  types: new Map(Object.entries(types)),
  fetch: () => Promise.reject(new Error('not fetched here')),
});

describe('chooseSnapshot', () => {
  const snapshots = [snap('aaaaaaaa', 'web1', 1), snap('bbbbbbbb', 'other', 2), snap('cccccccc', 'web1', 3)];
  const want = { domain: 'web', repository: '/repo' };

  it("takes the latest of this host's snapshots, never another host's", () => {
    expect(chooseSnapshot(snapshots, { ...want, host: 'web1' }).shortId).toBe('cccccccc');
    expect(chooseSnapshot(snapshots, { ...want, host: 'other' }).shortId).toBe('bbbbbbbb');
  });

  it('names the hosts that have snapshots when this one has none', () => {
    expect(() => chooseSnapshot(snapshots, { ...want, host: 'new' })).toThrow(
      "Hosts with snapshots of it: 'web1', 'other'",
    );
  });

  it('refuses a named snapshot of another host unless that host is asked for', () => {
    expect(() => chooseSnapshot(snapshots, { ...want, host: 'web1', id: 'bbbbbbbb' })).toThrow(
      "made by host 'other', not 'web1'",
    );
    expect(chooseSnapshot(snapshots, { ...want, host: 'other', id: 'bbbb' }).shortId).toBe('bbbbbbbb');
  });
});

describe('findDump and locate', () => {
  it('finds the one inactive dump in a folder snapshot and the layers the dump names beside it', () => {
    const t = tree({
      '/srv': 'dir',
      '/srv/web': 'dir',
      '/srv/web/web-inactive.xml': 'file',
      '/srv/web/a.qcow2': 'file',
    });
    expect(findDump(t, 'web')).toBe('/srv/web/web-inactive.xml');
    expect(locate(t, '/srv/web/a.qcow2', '/srv/web')).toBe('/srv/web/a.qcow2');
    expect(locate(t, '/var/lib/vm/a.qcow2', '/srv/web')).toBe('/srv/web/a.qcow2');
    expect(locate(t, '/var/lib/vm/b.qcow2', '/srv/web')).toBeUndefined();
  });

  it('refuses a missing, ambiguous or non-file dump', () => {
    expect(() => findDump(tree({ '/x': 'dir' }), 'web')).toThrow('holds no web-inactive.xml');
    expect(() =>
      findDump(tree({ '/a/web-inactive.xml': 'file', '/b/web-inactive.xml': 'file' }), 'web'),
    ).toThrow('more than one file');
    expect(() => findDump(tree({ '/a/web-inactive.xml': 'symlink' }), 'web')).toThrow('no regular file');
  });
});

describe('includePattern', () => {
  it('matches exactly one path whatever glob characters it holds', () => {
    expect(includePattern('/vm/we*b?[1]\\x.xml')).toBe('/vm/we\\*b\\?\\[1]\\\\x.xml');
  });
});
