import { describe, expect, it } from 'vitest';
import type { ReplicaState, SourceDisk, SourceLayer, SyncMode } from '../../src/chain/replica.js';
import { diskPrefixes, folderTag, freeName, planReplica } from '../../src/chain/replica.js';

function layer(path: string, mtimeMs = 1): SourceLayer {
  return { path, format: 'qcow2', size: 1000, mtimeMs };
}

const base = layer('/vm/vda.qcow2');
const incr1 = layer('/vm/vda.incr-20240101-000000');
const incr2 = layer('/vm/vda.incr-20240102-000000');
const diff1 = layer('/vm/vda.diff-20240103-000000');

function disk(...frozen: SourceLayer[]): SourceDisk {
  return { target: 'vda', frozen };
}

function plan(mode: SyncMode, source: SourceDisk, previous?: ReplicaState, changed: string[] = []) {
  const files = previous?.disks.flatMap((d) => d.files.map((f) => f.file)) ?? [];
  return planReplica({
    mode,
    disks: [source],
    previous,
    taken: new Set(files),
    claimed: new Set(),
    changed: new Set(changed),
  });
}

function stateOf(mode: SyncMode, result: ReturnType<typeof plan>): ReplicaState {
  return {
    version: 1,
    domain: 'web',
    mode,
    replica: 'web-replica',
    uuid: 'u',
    macs: [],
    updated: '',
    disks: result.final,
    retired: [],
  };
}

describe('replica names', () => {
  it('gives same-named bases from different folders distinct, stable prefixes', () => {
    const a = '/a/vda.qcow2';
    const b = '/b/vda.qcow2';
    const prefixes = diskPrefixes([a, b, '/a/vdb.qcow2'], new Map(), new Set());
    expect(prefixes.get(a)).toBe(`${folderTag('/a')}-`);
    expect(prefixes.get(b)).toBe(`${folderTag('/b')}-`);
    expect(prefixes.get(a)).not.toBe(prefixes.get(b));
    expect(prefixes.get('/a/vdb.qcow2')).toBe('');
    // Stable: the same disks get the same names on every sync.
    expect(diskPrefixes([a, b, '/a/vdb.qcow2'], new Map(), new Set())).toEqual(prefixes);
  });

  it("keeps a disk's recorded prefix and avoids names another domain's replica claims", () => {
    expect(diskPrefixes(['/b/vda.qcow2'], new Map(), new Set(['vda.qcow2'])).get('/b/vda.qcow2')).toBe(
      `${folderTag('/b')}-`,
    );
    expect(
      diskPrefixes(['/b/vda.qcow2'], new Map([['/b/vda.qcow2', '']]), new Set(['vda.qcow2'])).get(
        '/b/vda.qcow2',
      ),
    ).toBe('');
  });

  it('picks a free name next to a taken one', () => {
    expect(freeName('vda.qcow2', new Set())).toBe('vda.qcow2');
    expect(freeName('vda.qcow2', new Set(['vda.qcow2', 'vda~2.qcow2']))).toBe('vda~3.qcow2');
  });
});

describe('sync full', () => {
  it('converts the top frozen layer, and does nothing while the chain is unchanged', () => {
    const first = plan('full', disk(base, incr1));
    expect(first.copies).toEqual([{ kind: 'convert', target: 'vda', from: incr1.path, file: 'vda.qcow2' }]);
    expect(plan('full', disk(base, incr1), stateOf('full', first)).copies).toEqual([]);
    const next = plan('full', disk(base, incr1, incr2), stateOf('full', first));
    expect(next.copies).toMatchObject([{ kind: 'convert', from: incr2.path, file: 'vda~2.qcow2' }]);
    expect(next.retired).toEqual(['vda.qcow2']);
  });
});

describe('sync diff', () => {
  it('copies only the layers DIR lacks, backed by their copies in DIR', () => {
    const first = plan('diff', disk(base, incr1));
    expect(first.copies.map((c) => c.file)).toEqual(['vda.qcow2', 'vda.incr-20240101-000000']);
    const next = plan('diff', disk(base, incr1, incr2), stateOf('diff', first));
    expect(next.copies).toMatchObject([
      { kind: 'copy', file: 'vda.incr-20240102-000000', backing: { file: 'vda.incr-20240101-000000' } },
    ]);
    expect(next.retired).toEqual([]);
  });

  it('prunes layers consolidation removed once the new chain does without them', () => {
    const two = plan('diff', disk(base, incr1, incr2), stateOf('diff', plan('diff', disk(base, incr1))));
    const afterDiff = plan('diff', disk(base, diff1), stateOf('diff', two));
    expect(afterDiff.copies).toMatchObject([
      { file: 'vda.diff-20240103-000000', backing: { file: 'vda.qcow2' } },
    ]);
    expect([...afterDiff.retired].sort()).toEqual(['vda.incr-20240101-000000', 'vda.incr-20240102-000000']);
  });

  it('copies a changed base under a new name, leaving the old replica whole until it is retired', () => {
    const first = stateOf('diff', plan('diff', disk(base, incr1)));
    const afterFull = plan('diff', disk(layer(base.path, 2)), first);
    expect(afterFull.copies).toMatchObject([{ file: 'vda~2.qcow2', backing: undefined }]);
    expect([...afterFull.retired].sort()).toEqual(['vda.incr-20240101-000000', 'vda.qcow2']);
  });

  it('recopies a mirrored layer the replica wrote to (it was booted)', () => {
    const first = stateOf('diff', plan('diff', disk(base, incr1)));
    const next = plan('diff', disk(base, incr1), first, ['vda.incr-20240101-000000']);
    expect(next.copies.map((c) => c.file)).toEqual(['vda~2.incr-20240101-000000']);
  });
});

describe('sync inplace', () => {
  it('copies new layers as overlays and commits them into the one image', () => {
    const first = plan('inplace', disk(base, incr1));
    expect(first.copies).toMatchObject([{ kind: 'convert', file: 'vda.qcow2' }]);
    const next = plan('inplace', disk(base, incr1, incr2), stateOf('inplace', first));
    expect(next.copies).toMatchObject([
      { kind: 'copy', file: 'vda.incr-20240102-000000', backing: { file: 'vda.qcow2' } },
    ]);
    expect(next.commits).toEqual([
      { kind: 'commit', target: 'vda', top: 'vda.incr-20240102-000000', base: 'vda.qcow2' },
    ]);
    expect(next.final[0]?.files.map((f) => f.file)).toEqual(['vda.qcow2']);
    expect(next.final[0]?.files[0]?.holds.map((h) => h.path)).toEqual([base.path, incr1.path, incr2.path]);
  });

  it('merges a diff layer that replaced merged incr layers', () => {
    const state = stateOf('inplace', plan('inplace', disk(base, incr1, incr2)));
    const next = plan('inplace', disk(base, diff1), state);
    expect(next.copies).toMatchObject([{ file: 'vda.diff-20240103-000000', backing: { file: 'vda.qcow2' } }]);
  });

  it('finishes overlays a killed sync left pending', () => {
    const first = plan('inplace', disk(base, incr1));
    const interrupted = plan('inplace', disk(base, incr1, incr2), stateOf('inplace', first));
    const pending = { ...stateOf('inplace', first), disks: interrupted.disks };
    const resumed = plan('inplace', disk(base, incr1, incr2), pending);
    expect(resumed.copies).toEqual([]);
    expect(resumed.commits).toMatchObject([{ top: 'vda.incr-20240102-000000', base: 'vda.qcow2' }]);
  });

  it('rebuilds the image when the base changed or the replica was booted', () => {
    const state = stateOf('inplace', plan('inplace', disk(base, incr1)));
    const afterFull = plan('inplace', disk(layer(base.path, 2)), state);
    expect(afterFull.copies).toMatchObject([{ kind: 'convert', file: 'vda~2.qcow2' }]);
    expect(afterFull.retired).toEqual(['vda.qcow2']);
    const booted = plan('inplace', disk(base, incr1, incr2), state, ['vda.qcow2']);
    expect(booted.copies).toMatchObject([{ kind: 'convert', from: incr2.path }]);
    expect(booted.notes.join()).toMatch(/booted/);
  });
});
