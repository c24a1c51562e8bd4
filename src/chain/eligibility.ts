import { UserError } from '../errors.js';
import type { Disk, DiskDefinition, DomainState } from './model.js';
import { isIgnoredDevice } from './model.js';
import { deviceAboveBase } from './blockdisk.js';

/** The domain has no disk that could take part: `all` skips such domains instead of failing. */
export class NoQcow2DiskError extends UserError {}

export interface DiskSelection {
  /** Disks that take part, in definition order. */
  readonly included: readonly Disk[];
  /** Disks left out at the user's request (`--exclude`). */
  readonly excluded: readonly Disk[];
}

/** Why a disk cannot take part, or undefined when it can. */
export function unsupportedReason(disk: DiskDefinition): string | undefined {
  if (disk.sourceType !== 'file' && disk.sourceType !== 'block')
    return `is a ${disk.sourceType} disk, neither a file nor a block device`;
  if (disk.source === undefined) return `has no source ${disk.sourceType === 'block' ? 'device' : 'file'}`;
  if (disk.driverType !== 'qcow2' && disk.driverType !== 'raw')
    return `is ${disk.driverType ?? 'of unknown format'}, neither qcow2 nor raw`;
  return undefined;
}

/** What the user can do about a disk that cannot take part, beside leaving it out. */
function wayOut(disk: DiskDefinition): string {
  const exclude = `leave it out with --exclude ${disk.target}`;
  switch (disk.sourceType) {
    case 'file':
      return `Convert it to qcow2 (qemu-img convert -O qcow2) or ${exclude}.`;
    case 'network':
      return `Its data lives on a storage server, not in a file of this host: ${exclude}.`;
    case 'volume':
      return (
        `Point the disk at the volume's file (virsh vol-path --pool POOL ${disk.source ?? 'VOLUME'}, ` +
        `then virsh edit) or ${exclude}.`
      );
    default:
      return `Leave it out with --exclude ${disk.target}.`;
  }
}

/**
 * Picks the disks that take part. A disk that cannot take part stops the verb unless the user
 * excluded it by target or path: silently skipping a disk would leave it out of every backup.
 */
export function selectDisks(state: DomainState, exclude: readonly string[] = []): DiskSelection {
  const included: Disk[] = [];
  const excluded: Disk[] = [];
  const problems: string[] = [];
  const unknown = new Set(exclude);
  for (const disk of state.disks) {
    if (isIgnoredDevice(disk)) continue;
    const wanted = exclude.find((e) => e === disk.target || e === disk.source);
    if (wanted !== undefined) {
      unknown.delete(wanted);
      excluded.push(disk);
      continue;
    }
    const reason = unsupportedReason(disk) ?? deviceAboveBase(disk);
    if (reason === undefined) included.push(disk);
    else
      problems.push(
        `disk ${disk.target} of domain '${state.name}' (${disk.source ?? 'no file'}) ${reason}. ${wayOut(disk)}`,
      );
  }
  if (unknown.size > 0)
    problems.push(
      `--exclude ${[...unknown].join(', ')}: domain '${state.name}' has no such disk ` +
        `(it has ${state.disks.map((d) => d.target).join(', ') || 'no disks'}).`,
    );
  if (problems.length === 0 && included.length === 0)
    throw new NoQcow2DiskError(
      `domain '${state.name}' has no qcow2 or raw disk (file or block device) to back up.`,
    );
  if (problems.length > 0) throw new UserError(problems.join('\n'));
  return { included, excluded };
}
