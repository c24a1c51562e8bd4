import { UserError } from './errors.js';

/*
 * Domain names as file names and restic tags, in one place. libvirt allows any character in a
 * domain name but '/'. Each kind of file keeps the encoding it was first written with, so the
 * lock, state and profile files of existing installations keep their names.
 */

/**
 * A domain's name as one plain file name (locks, journals, maintenance records, run records): a
 * leading '.' would hide the file or make `..`.
 */
export function domainFileName(domain: string, suffix: string): string {
  return `${encodeURIComponent(domain).replace(/^\./, '%2E')}${suffix}`;
}

/**
 * A domain's name in a replica folder (replica states, definitions, temporary copies): every '.'
 * is encoded too, so no name can pass for another's file with a suffix.
 */
export function replicaFileName(domain: string): string {
  return encodeURIComponent(domain).replaceAll('.', '%2E');
}

/** The name of a replica's own console or serial log: the replica's name, then the source's log file name. */
export function replicaLogName(replica: string, sourceLog: string): string {
  return `${encodeURIComponent(replica)}-${sourceLog}`;
}

/**
 * A domain's name in the files generated profiles and units name (resticprofile lock, status, log
 * and file lists): only `A-Z a-z 0-9 . _ -` stay, so resticprofile's templates and shell see none
 * of their own characters.
 */
export function profileFileName(domain: string): string {
  return domain.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The tags every snapshot carries besides its domain's: a domain named so would share them. */
/** The tag of a block device's own snapshot (see ops/devicecopy.ts). */
export const deviceTag = 'kvm-device';

const commonTags = ['kvm', 'incr', 'diff', 'full', deviceTag];

/**
 * A domain's restic tag: its name. restic splits `--tag a,b` at commas (and then matches snapshots
 * holding both), so a name holding one can be no tag: every verb that writes or looks up snapshots
 * by tag refuses it, with `remedy` saying what to do instead.
 */
export function domainTag(domain: string, remedy: string): string {
  const problem = tagProblem(domain);
  if (problem !== undefined)
    throw new UserError(`domain '${domain}': ${problem}. Nothing was changed. ${remedy}`);
  return domain;
}

/** Why a domain's name cannot be its restic tag, if it cannot (for checks that throw their own error). */
export function tagProblem(domain: string): string | undefined {
  return domain.includes(',') ? 'its name holds a comma, which restic tags cannot hold' : undefined;
}

/**
 * The tags of a snapshot `run` makes; a domain named like a common tag would make its retention
 * (`forget --tag NAME`) reach every domain's snapshots.
 */
export function snapshotTags(domain: string, level: string): string[] {
  if (commonTags.includes(domain))
    throw new UserError(
      `domain '${domain}': its name is also a tag of every snapshot (${commonTags.join(', ')}), so its ` +
        "retention would reach other domains' snapshots. Nothing was changed. Rename the domain (virsh domrename).",
    );
  const tag = domainTag(
    domain,
    'Rename the domain (virsh domrename) or back it up with backup + restic by hand.',
  );
  return [tag, 'kvm', level];
}
