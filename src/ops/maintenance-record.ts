import { rmSync } from 'node:fs';
import path from 'node:path';
import type { MaintenanceDisk } from '../chain/maintenance.js';
import type { RunState } from '../chain/model.js';
import { DomainBusyError } from '../errors.js';
import { domainFileName } from '../naming.js';
import * as z from '../schema.js';
import { privateFolder } from '../state/folder.js';
import { readStateFile } from '../state/read.js';
import { writeStateFile } from '../state/write.js';

/** What `maintenance enter` recorded: enough to save or drop later, from any process. */
export interface MaintenanceRecord {
  readonly domain: string;
  readonly uuid: string;
  /** ISO time of enter. */
  readonly since: string;
  /** The run state at enter. */
  readonly runState: RunState;
  readonly disks: readonly MaintenanceDisk[];
  /** The memory state saved with the disks (`enter -s DIR`). */
  readonly memoryFile?: string;
  /** The persistent definition before enter, pointing at the parents: a last resort to revert by hand. */
  readonly persistentXml?: string;
}

const recordSchema = z.object({
  domain: z.string(),
  uuid: z.string(),
  since: z.string(),
  runState: z.enum(['running', 'paused', 'shut off', 'other']),
  disks: z.array(
    z.object({ target: z.string(), layer: z.string(), parent: z.string(), parentFormat: z.string() }),
  ),
  memoryFile: z.optional(z.string()),
  persistentXml: z.optional(z.string()),
});

export function maintenanceFile(stateDir: string, domain: string): string {
  return path.join(stateDir, 'maintenance', domainFileName(domain, '.json'));
}

export function readMaintenance(stateDir: string, domain: string): MaintenanceRecord | undefined {
  if (!maintenanceFolder(stateDir, false)) return undefined;
  const file = maintenanceFile(stateDir, domain);
  return readStateFile(
    file,
    recordSchema,
    {
      what: `maintenance record of domain '${domain}'`,
      remedy:
        `It names the maintenance layer of each disk and the parent a drop returns to: compare it with ` +
        `'unifi-backup backup showchain ${domain}', end the window by hand if one is open (virsh blockcommit or ` +
        `qemu-img commit), then move the file away (mv '${file}' '${file}.bad').`,
    },
    { domain },
  );
}

function maintenanceFolder(stateDir: string, create: boolean): boolean {
  return (
    privateFolder(stateDir, 'state folder', create) &&
    privateFolder(path.join(stateDir, 'maintenance'), 'state folder', create)
  );
}

export function writeMaintenance(stateDir: string, record: MaintenanceRecord): void {
  maintenanceFolder(stateDir, true);
  writeStateFile(maintenanceFile(stateDir, record.domain), `${JSON.stringify(record, null, 2)}\n`);
}

export function clearMaintenance(stateDir: string, domain: string): void {
  rmSync(maintenanceFile(stateDir, domain), { force: true });
}

/** Verbs that would change the chain under a maintenance window refuse (exit 3) unless forced. */
export function refuseInMaintenance(stateDir: string, domain: string, verb: string): void {
  const record = readMaintenance(stateDir, domain);
  if (record === undefined) return;
  throw new DomainBusyError(
    `domain '${domain}' is in maintenance since ${record.since}, so '${verb}' was refused and nothing was ` +
      `changed. End the window first ('unifi-backup maintenance save ${domain}' keeps the changes, ` +
      `'maintenance drop' throws them away), or add --force to run it anyway.`,
  );
}

export interface MaintenanceStatus {
  readonly domain: string;
  readonly inMaintenance: boolean;
  /** ISO time of enter. */
  readonly since?: string;
  /** The maintenance layer of each disk (`target`, `layer`, and the `parent` a drop returns to). */
  readonly disks: readonly MaintenanceDisk[];
  readonly memoryFile?: string;
}

/**
 * Whether a domain is in maintenance, since when, and on which layers — read from the record only
 * (no libvirt call), so a `status` verb can show it for every domain cheaply.
 */
export function maintenanceStatus(stateDir: string, domain: string): MaintenanceStatus {
  const record = readMaintenance(stateDir, domain);
  if (record === undefined) return { domain, inMaintenance: false, disks: [] };
  return {
    domain,
    inMaintenance: true,
    since: record.since,
    disks: record.disks,
    ...(record.memoryFile === undefined ? {} : { memoryFile: record.memoryFile }),
  };
}
