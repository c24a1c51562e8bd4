import { describe, expect, it } from 'vitest';
import { refuseManagedSave } from '../../src/chain/managedsave.js';
import { domainState, layer, qcow2Disk } from './fixtures.js';

const disks = [qcow2Disk('vda', [layer('/vms/web/disk.1.qcow2')])];

describe('refuseManagedSave', () => {
  it('refuses a domain with a managed save image, naming it, why, and both ways out', () => {
    const run = () => {
      refuseManagedSave(domainState({ disks, runState: 'shut off', managedSave: true }), 'backup full');
    };
    expect(run).toThrow(/domain 'web' is shut off with a managed save image/);
    expect(run).toThrow(/expects the disks as they were/);
    expect(run).toThrow(/'backup full' changed nothing/);
    expect(run).toThrow(/virsh start 'web'.*virsh managedsave-remove 'web'/);
  });

  it('lets a domain without one through', () => {
    expect(() => {
      refuseManagedSave(domainState({ disks, runState: 'shut off' }), 'backup incr');
    }).not.toThrow();
  });
});
