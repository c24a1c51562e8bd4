import { describe, expect, it } from 'vitest';
import type { MaintenanceDisk } from '../../src/chain/maintenance.js';
import { maintenancePosition, planDrop, planEnter, planSave } from '../../src/chain/maintenance.js';
import { describeStep } from '../../src/chain/plan.js';
import { domainState, layer, qcow2Disk } from './fixtures.js';

const now = new Date(2026, 10, 26, 10, 0, 0);
const base = layer('/vms/web/disk.1.qcow2');
const incr = layer('/vms/web/disk.1.incr-20261125-100000', 'incr');
const maint = layer('/vms/web/disk.1.maintenance-20261126-100000', 'maintenance');
const vdaBefore = qcow2Disk('vda', [incr, base]);
const vdaDuring = qcow2Disk('vda', [maint, incr, base]);
const record: MaintenanceDisk[] = [
  { target: 'vda', layer: maint.path, parent: incr.path, parentFormat: 'qcow2' },
];

describe('planEnter', () => {
  it('plans one atomic snapshot of kind maintenance, no config dumps, and records each parent', () => {
    const state = domainState({ disks: [vdaBefore] });
    const { plan, disks } = planEnter(state, [vdaBefore], {
      now,
      quiesce: true,
      taken: new Set(),
      memoryDir: '/var/lib/mem',
    });
    expect(plan.steps.map((s) => s.kind)).toEqual(['snapshot']);
    expect(plan.steps[0]).toMatchObject({
      kind: 'snapshot',
      quiesce: false,
      memoryFile: '/var/lib/mem/web.maintenance-20261126-100000.memory',
    });
    expect(disks).toEqual(record);
    expect(plan.notes.join()).toContain('--quiesce');
  });

  it('quiesces when asked and no memory state is saved', () => {
    const state = domainState({ disks: [vdaBefore] });
    const { plan } = planEnter(state, [vdaBefore], { now, quiesce: true, taken: new Set() });
    expect(plan.steps[0]).toMatchObject({ kind: 'snapshot', quiesce: true });
  });

  it('creates overlays and redefines a shut-off domain', () => {
    const state = domainState({ disks: [vdaBefore], runState: 'shut off' });
    const { plan } = planEnter(state, [vdaBefore], { now, quiesce: false, taken: new Set() });
    expect(plan.steps.map((s) => s.kind)).toEqual(['create-overlays', 'redefine']);
    expect(plan.tops.get('vda')).toBe(maint.path);
  });
});

describe('maintenancePosition', () => {
  it('tells a disk in maintenance from one back on its parent and one that changed', () => {
    const m = record[0] as MaintenanceDisk;
    expect(maintenancePosition(vdaDuring, m)).toBe('in-maintenance');
    expect(maintenancePosition(vdaBefore, m)).toBe('reverted');
    const forced = qcow2Disk('vda', [
      layer('/vms/web/disk.1.incr-20261126-110000', 'incr'),
      maint,
      incr,
      base,
    ]);
    expect(maintenancePosition(forced, m)).toBe('changed');
    expect(maintenancePosition(undefined, m)).toBe('changed');
  });
});

describe('planSave', () => {
  it('running: block-commits the maintenance layer into its parent and removes it', () => {
    const plan = planSave(domainState({ disks: [vdaDuring] }), record);
    expect(plan.steps).toEqual([
      {
        kind: 'block-commit',
        merge: { target: 'vda', top: maint.path, base: incr.path, baseFormat: 'qcow2' },
      },
      { kind: 'purge', files: [maint.path] },
    ]);
    expect(plan.tops.get('vda')).toBe(incr.path);
  });

  it('shut off: qemu-img commit, then the definition points at the parent', () => {
    const plan = planSave(domainState({ disks: [vdaDuring], runState: 'shut off' }), record);
    expect(plan.steps.map((s) => s.kind)).toEqual(['commit', 'redefine', 'purge']);
    expect(plan.steps[1]).toEqual({ kind: 'redefine', sources: [{ target: 'vda', file: incr.path }] });
  });

  it('refuses, naming the disk and --consolidate, when the chain changed since enter', () => {
    const forced = qcow2Disk('vda', [
      layer('/vms/web/disk.1.incr-20261126-110000', 'incr'),
      maint,
      incr,
      base,
    ]);
    expect(() => planSave(domainState({ disks: [forced] }), record)).toThrow(/disk vda.*--consolidate/s);
  });
});

describe('planDrop', () => {
  it('shut off: redefines to the parents and removes the maintenance layers', () => {
    const state = domainState({ disks: [vdaDuring], runState: 'shut off' });
    const plan = planDrop(state, record, { force: false });
    expect(plan.steps).toEqual([
      { kind: 'redefine', sources: [{ target: 'vda', file: incr.path }] },
      { kind: 'purge', files: [maint.path] },
    ]);
  });

  it('running with memory state: destroy, redefine, restore on the parents', () => {
    const plan = planDrop(domainState({ disks: [vdaDuring] }), record, {
      force: false,
      memoryFile: '/mem/web.memory',
    });
    expect(plan.steps.map((s) => s.kind)).toEqual(['destroy', 'redefine', 'restore', 'purge']);
    expect(plan.steps[2]).toEqual({
      kind: 'restore',
      memoryFile: '/mem/web.memory',
      sources: [{ target: 'vda', file: incr.path }],
    });
    expect(plan.steps.map(describeStep).join('\n')).toContain('/mem/web.memory');
  });

  it('running without memory state refuses unless --force, which stops and starts the domain', () => {
    const state = domainState({ disks: [vdaDuring] });
    expect(() => planDrop(state, record, { force: false })).toThrow(/'web' is running.*--force/s);
    expect(planDrop(state, record, { force: true }).steps.map((s) => s.kind)).toEqual([
      'destroy',
      'redefine',
      'start',
      'purge',
    ]);
  });

  it('refuses --force on a transient domain, which libvirt would forget once stopped', () => {
    const state = domainState({ disks: [vdaDuring], persistent: false, persistentSources: new Map() });
    expect(() => planDrop(state, record, { force: true })).toThrow(/transient/);
  });

  it('brings a domain an interrupted drop stopped back running: from its memory state, else started', () => {
    const stopped = domainState({ disks: [vdaDuring], runState: 'shut off' });
    const withMemory = planDrop(stopped, record, {
      force: false,
      memoryFile: '/mem/web.memory',
      interrupted: 'restore',
    });
    expect(withMemory.steps.map((s) => s.kind)).toEqual(['redefine', 'restore', 'purge']);
    const reverted = domainState({ disks: [vdaBefore], runState: 'shut off' });
    expect(
      planDrop(reverted, record, { force: true, interrupted: 'start' }).steps.map((s) => s.kind),
    ).toEqual(['start', 'purge']);
  });

  it('finishes an interrupted drop: disks already on their parents only lose the leftover layers', () => {
    const plan = planDrop(domainState({ disks: [vdaBefore] }), record, { force: false });
    expect(plan.steps).toEqual([{ kind: 'purge', files: [maint.path] }]);
  });
});
