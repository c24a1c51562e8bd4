import { describe, expect, it } from 'vitest';
import type { FileId } from '../../src/host/fileid.js';
import type { References } from '../../src/ops/references.js';
import { useOf } from '../../src/ops/references.js';

const base = '2049:11' as FileId;
const incr = '2049:12' as FileId;
const references = (unreadable: string[] = []): References => ({
  users: new Map([
    [base, new Set(['web', 'clone'])],
    [incr, new Set(['web'])],
  ]),
  unreadable,
});

describe('useOf: whether a file is referenced, by identity', () => {
  it('names the other domains whose chains hold the file', () => {
    expect(useOf(references(), base, '/vms/web/disk.1.qcow2', 'web')).toEqual({
      kind: 'used',
      by: ['clone'],
    });
    expect(useOf(references(), base, '/vms/web/disk.1.qcow2')).toEqual({
      kind: 'used',
      by: ['web', 'clone'],
    });
  });

  it('finds a file unused only when no other domain holds it and every chain was read', () => {
    expect(useOf(references(), incr, '/vms/web/disk.1.incr-x', 'web')).toEqual({ kind: 'unused' });
    expect(useOf(references(), '2049:99' as FileId, '/elsewhere')).toEqual({ kind: 'unused' });
  });

  it('fails closed: an unreadable chain makes an unreferenced file unknown, saying which', () => {
    const use = useOf(
      references(["the chain of disk vda of domain 'db' (/vms/db/d.qcow2) cannot be read"]),
      incr,
      'f',
      'web',
    );
    expect(use).toEqual({ kind: 'unknown', why: expect.stringContaining("domain 'db'") as string });
  });

  it('fails closed: a file whose identity cannot be established is unknown, naming it', () => {
    expect(useOf(references(), undefined, '/vms/web/gone.qcow2')).toEqual({
      kind: 'unknown',
      why: 'the identity of /vms/web/gone.qcow2 cannot be established',
    });
  });

  it('still names a domain that uses the file while another chain is unreadable', () => {
    expect(useOf(references(['x']), base, 'f', 'web')).toEqual({ kind: 'used', by: ['clone'] });
  });
});
