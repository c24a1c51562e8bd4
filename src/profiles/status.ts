import * as z from '../schema.js';
import { readStateFile } from '../state/read.js';

/** What resticprofile's `status-file` says of a profile's last backup. */
export interface ProfileBackupStatus {
  readonly success: boolean;
  readonly time: string;
  readonly error?: string;
}

const statusFileSchema = z.object({
  profiles: z.record(
    z.string(),
    z.object({
      backup: z.optional(z.object({ success: z.boolean(), time: z.string(), error: z.optional(z.string()) })),
    }),
  ),
});

/** The last backup of `profile` that a resticprofile status file records; undefined when none. */
export function lastProfileBackup(statusFile: string, profile: string): ProfileBackupStatus | undefined {
  const status = readStateFile(statusFile, statusFileSchema, {
    what: 'resticprofile status file',
    remedy: `Check what wrote it; resticprofile rewrites it after the next run of ${profile}.`,
  });
  return status?.profiles[profile]?.backup;
}
