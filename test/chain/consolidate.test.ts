import { describe, expect, it } from 'vitest';
import { chooseLevel, planCommit, planDiff } from '../../src/chain/consolidate.js';
import { domainState, layer, qcow2Disk } from './fixtures.js';

const now = new Date(2026, 10, 26, 21, 0, 0);
const options = { kind: 'incr' as const, now, quiesce: false, taken: new Set<string>() };
const vda = qcow2Disk('vda', [
  layer('/vms/web/disk.1.incr-20261126-160000', 'incr'),
  layer('/vms/web/disk.1.incr-20261126-120000', 'incr'),
  layer('/vms/web/disk.1.bimg-20261101-000000', 'foreign'),
  layer('/vms/web/disk.1.qcow2'),
]);
const fresh = qcow2Disk('vdb', [layer('/vms/web/disk.2.qcow2')]);

describe('planDiff', () => {
  it('running: diff layer, pull into it, purge what was pulled, then incr', () => {
    const plan = planDiff(domainState({ disks: [vda] }), [vda], options);
    expect(plan.steps.map((s) => s.kind)).toEqual([
      'snapshot',
      'block-pull',
      'purge',
      'dump-config',
      'snapshot',
    ]);
    expect(plan.steps[1]).toEqual({
      kind: 'block-pull',
      merge: {
        target: 'vda',
        top: '/vms/web/disk.1.diff-20261126-210000',
        base: '/vms/web/disk.1.qcow2',
        baseFormat: 'qcow2',
      },
    });
    // the foreign layer is consolidated and removed like the others; the base never is
    expect(plan.steps[2]).toEqual({
      kind: 'purge',
      files: [
        '/vms/web/disk.1.incr-20261126-160000',
        '/vms/web/disk.1.incr-20261126-120000',
        '/vms/web/disk.1.bimg-20261101-000000',
      ],
    });
    const last = plan.steps[4];
    expect(last?.kind === 'snapshot' && last.layers[0]).toEqual({
      target: 'vda',
      file: '/vms/web/disk.1.incr-20261126-210000',
      backing: '/vms/web/disk.1.diff-20261126-210000',
      backingFormat: 'qcow2',
    });
    expect(plan.tops.get('vda')).toBe('/vms/web/disk.1.incr-20261126-210000');
  });

  it('shut off: overlay, rebase onto the base, redefine, purge, then incr', () => {
    const plan = planDiff(domainState({ disks: [vda], runState: 'shut off' }), [vda], options);
    expect(plan.steps.map((s) => s.kind)).toEqual([
      'create-overlays',
      'rebase',
      'redefine',
      'purge',
      'dump-config',
      'create-overlays',
      'redefine',
    ]);
  });

  it('a disk with only its base has nothing to pull or purge', () => {
    const plan = planDiff(domainState({ disks: [fresh] }), [fresh], options);
    expect(plan.steps.map((s) => s.kind)).toEqual(['snapshot', 'dump-config', 'snapshot']);
  });

  it('keeps the memory state and quiesce for the final snapshot only', () => {
    const plan = planDiff(domainState({ disks: [vda] }), [vda], {
      ...options,
      quiesce: true,
      memoryDir: '/state',
    });
    const snapshots = plan.steps.filter((s) => s.kind === 'snapshot');
    expect(snapshots.map((s) => [s.quiesce, s.memoryFile])).toEqual([
      [false, undefined],
      [true, '/state/web.incr-20261126-210000.memory'],
    ]);
  });
});

describe('planCommit', () => {
  it('full, running: commit into the base with pivot, purge, then incr on the base', () => {
    const plan = planCommit(domainState({ disks: [vda, fresh] }), [vda, fresh], 'full', options);
    expect(plan.steps.map((s) => s.kind)).toEqual(['block-commit', 'purge', 'dump-config', 'snapshot']);
    expect(plan.tops.get('vda')).toBe('/vms/web/disk.1.incr-20261126-210000');
    expect(plan.tops.get('vdb')).toBe('/vms/web/disk.2.incr-20261126-210000');
  });

  it('disable, shut off: commit, redefine to the bases, purge, and no new layer', () => {
    const plan = planCommit(domainState({ disks: [vda], runState: 'shut off' }), [vda], 'disable', options);
    expect(plan.steps.map((s) => s.kind)).toEqual(['commit', 'redefine', 'purge']);
    expect(plan.tops.get('vda')).toBe('/vms/web/disk.1.qcow2');
  });

  it('disable, shut off, over a raw base: the redefinition names the raw format, an incr over it backs onto raw', () => {
    const rawBase = { ...layer('/vms/web/data.img'), format: 'raw' };
    const raw = { ...qcow2Disk('vdc', [layer('/vms/web/data.incr-20261126-160000', 'incr'), rawBase]) };
    const state = domainState({ disks: [vda, raw], runState: 'shut off' });
    const disabled = planCommit(state, [vda, raw], 'disable', options);
    expect(disabled.steps[2]).toEqual({
      kind: 'redefine',
      sources: [
        { target: 'vda', file: '/vms/web/disk.1.qcow2' },
        { target: 'vdc', file: '/vms/web/data.img', format: 'raw' },
      ],
    });
    const full = planCommit(state, [vda, raw], 'full', options);
    const overlays = full.steps.find((s) => s.kind === 'create-overlays');
    expect(overlays?.kind === 'create-overlays' && overlays.layers[1]).toEqual({
      target: 'vdc',
      file: '/vms/web/data.incr-20261126-210000',
      backing: '/vms/web/data.img',
      backingFormat: 'raw',
    });
  });
});

describe('chooseLevel (max-incr)', () => {
  it('turns an incr that would exceed the limit into a diff, and says so', () => {
    expect(chooseLevel([vda], 'incr', 3)).toEqual({ level: 'incr' });
    const chosen = chooseLevel([vda], 'incr', 2);
    expect(chosen.level).toBe('diff');
    expect(chosen.note).toMatch(/already holds 2 incr layers \(max-incr 2\)/);
    expect(chooseLevel([vda], 'full', 1)).toEqual({ level: 'full' });
    expect(chooseLevel([vda], 'incr', undefined)).toEqual({ level: 'incr' });
  });
});
