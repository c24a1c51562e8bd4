import { UserError } from '../errors.js';
import type { DomainState } from './model.js';

/**
 * A managed save image holds the guest's RAM as it was when libvirt saved it, and that RAM expects
 * the disks exactly as they were: changing a chain under it would corrupt the guest when it resumes.
 */
export function refuseManagedSave(state: DomainState, verb: string): void {
  if (!state.managedSave) return;
  throw new UserError(
    `domain '${state.name}' is shut off with a managed save image (its RAM, saved by libvirt), and that RAM ` +
      `expects the disks as they were when it was saved, so '${verb}' changed nothing. Resume it with ` +
      `virsh start '${state.name}' (then run again), or discard the saved state with ` +
      `virsh managedsave-remove '${state.name}'.`,
  );
}
