import { describe, expect, it } from 'vitest';
import { describeStep } from '../../src/chain/plan.js';
import { planSnapshot } from '../../src/chain/incr.js';
import { deviceLayer, domainState, layer, qcow2Disk } from './fixtures.js';

const now = new Date(2026, 10, 26, 10, 0, 0);
const vda = qcow2Disk('vda', [
  layer('/vms/web/disk.1.incr-20261125-100000', 'incr'),
  layer('/vms/web/disk.1.qcow2'),
]);
const vdb = qcow2Disk('vdb', [layer('/data/other/disk.2.qcow2')]);
const cdrom = { ...qcow2Disk('hdc', []), device: 'cdrom' as const, driverType: 'raw' };

describe('planSnapshot', () => {
  it('plans one atomic live snapshot for a running domain, new layers named after each base', () => {
    const state = domainState({ disks: [vda, vdb, cdrom] });
    const plan = planSnapshot(state, [vda, vdb], 'incr', {
      kind: 'incr',
      now,
      quiesce: true,
      taken: new Set(),
    });
    expect(plan.steps.map((s) => s.kind)).toEqual(['dump-config', 'snapshot']);
    const [dump, snapshot] = plan.steps;
    expect(dump).toEqual({
      kind: 'dump-config',
      dumps: [
        { flavour: 'live', file: '/vms/web/web.xml' },
        { flavour: 'inactive', file: '/vms/web/web-inactive.xml' },
        { flavour: 'migratable', file: '/vms/web/web-migratable.xml' },
      ],
    });
    expect(snapshot).toEqual({
      kind: 'snapshot',
      quiesce: true,
      untouched: ['hdc'],
      layers: [
        {
          target: 'vda',
          file: '/vms/web/disk.1.incr-20261126-100000',
          backing: '/vms/web/disk.1.incr-20261125-100000',
          backingFormat: 'qcow2',
        },
        {
          target: 'vdb',
          file: '/data/other/disk.2.incr-20261126-100000',
          backing: '/data/other/disk.2.qcow2',
          backingFormat: 'qcow2',
        },
      ],
    });
    expect(plan.tops.get('vda')).toBe('/vms/web/disk.1.incr-20261126-100000');
  });

  it('plans overlays and one redefinition for a shut-off domain, and says quiesce is moot', () => {
    const state = domainState({ disks: [vda], runState: 'shut off' });
    const plan = planSnapshot(state, [vda], 'incr', { kind: 'incr', now, quiesce: true, taken: new Set() });
    expect(plan.steps.map((s) => s.kind)).toEqual(['dump-config', 'create-overlays', 'redefine']);
    expect(plan.steps[2]).toEqual({
      kind: 'redefine',
      sources: [{ target: 'vda', file: '/vms/web/disk.1.incr-20261126-100000' }],
    });
    expect(plan.notes.join()).toMatch(/shut off.*--quiesce ignored/);
  });

  it('moves to the next free second when a name is taken', () => {
    const state = domainState({ disks: [vda] });
    const taken = new Set(['/vms/web/disk.1.incr-20261126-100000', '/vms/web/disk.1.incr-20261126-100001']);
    const plan = planSnapshot(state, [vda], 'incr', { kind: 'incr', now, quiesce: false, taken });
    expect(plan.tops.get('vda')).toBe('/vms/web/disk.1.incr-20261126-100002');
  });

  it('describes every step in one line', () => {
    const state = domainState({ disks: [vda], runState: 'shut off' });
    const plan = planSnapshot(state, [vda], 'incr', { kind: 'incr', now, quiesce: false, taken: new Set() });
    expect(plan.steps.map(describeStep)).toEqual([
      'write config dumps /vms/web/web.xml, /vms/web/web-inactive.xml, /vms/web/web-migratable.xml',
      'create overlays vda: /vms/web/disk.1.incr-20261125-100000 ← /vms/web/disk.1.incr-20261126-100000',
      'redefine with vda=/vms/web/disk.1.incr-20261126-100000',
    ]);
  });

  it('puts the overlay of a block device, and the config dumps, into the overlay folder', () => {
    const lv = {
      ...qcow2Disk('vdb', [deviceLayer('/dev/vg0/web-data')]),
      sourceType: 'block',
      driverType: 'raw',
    };
    const state = domainState({ disks: [lv] });
    const plan = planSnapshot(state, [lv], 'incr', {
      kind: 'incr',
      now,
      quiesce: false,
      taken: new Set(),
      overlayDir: '/srv/overlays',
    });
    expect(plan.tops.get('vdb')).toBe('/srv/overlays/web-data.incr-20261126-100000');
    expect(plan.steps[0]).toMatchObject({
      kind: 'dump-config',
      dumps: [{ file: '/srv/overlays/web.xml' }, {}, {}],
    });
    expect(plan.steps[1]).toMatchObject({
      kind: 'snapshot',
      layers: [{ backing: '/dev/vg0/web-data', backingFormat: 'raw' }],
    });
    expect(() =>
      planSnapshot(state, [lv], 'incr', { kind: 'incr', now, quiesce: false, taken: new Set() }),
    ).toThrow(
      /disk vdb of domain 'web' is the block device \/dev\/vg0\/web-data: .*Nothing was changed\. Set overlay-dir .*domains\.web.* --overlay-dir DIR.*--exclude vdb/,
    );
  });
});
