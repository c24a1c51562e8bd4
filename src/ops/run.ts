import { UserError } from '../errors.js';
import type { ForgetResult, Restic, ResticBackupSummary, RetentionRules } from '../host/restic.js';
import { ResticError } from '../host/restic.js';
import type { BackupResult } from './backup.js';
import { backupLocked, withEarlyStart } from './backup.js';
import type { OpsContext } from './context.js';
import { domainOperation } from './frame.js';
import { snapshotTags } from '../naming.js';
import { backupFiles } from './inspect.js';
import type { DeviceCopy } from './devicecopy.js';
import { copyDevices, deviceFiles } from './devicecopy.js';

export type RunLevel = 'incr' | 'diff' | 'full';

export interface RunRequest {
  readonly level: RunLevel;
  readonly quiesce: boolean;
  readonly exclude: readonly string[];
  readonly maxIncr?: number;
  readonly overlayDir?: string;
  /** The snapshots' host name: the parent and the retention group are looked up under it. */
  readonly host: string;
  /** undefined: no keep rules configured, nothing is forgotten. */
  readonly retention: RetentionRules | undefined;
  readonly prune: boolean;
}

export interface RunResult {
  readonly domain: string;
  readonly level: string;
  readonly dryRun: boolean;
  readonly prepare: BackupResult;
  readonly files: readonly string[];
  readonly tags: readonly string[];
  readonly parent?: string;
  readonly restic?: ResticBackupSummary;
  /** Block-device bases: each one's current copy in the repository (a snapshot of its own). */
  readonly devices?: readonly DeviceCopy[];
  readonly retention?: ForgetResult;
  readonly phases: { readonly prepareMs: number; readonly resticMs: number; readonly retentionMs: number };
  readonly durationMs: number;
}

/** Opens the repository once per invocation, before any domain is touched; `--init` creates it. */
export async function openRepository(restic: Restic, init: boolean): Promise<'found' | 'created'> {
  if (await restic.exists()) return 'found';
  if (!init)
    throw new UserError(
      `there is no restic repository at ${restic.repositoryText}. Nothing was changed. ` +
        'Create it with: unifi-backup run --init …, or check restic.repository / RESTIC_REPOSITORY.',
    );
  await restic.init();
  return 'created';
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work();
  return { value, ms: Date.now() - started };
}

/**
 * `run LEVEL DOMAIN`: prepare exactly as `backup LEVEL`, hand restic exactly the frozen layers and
 * config dumps, then apply retention to this domain's snapshots. A restic failure leaves the chain
 * as `backup` left it (valid, running); nothing is forgotten after a failed backup.
 */
export async function runDomain(
  ctx: OpsContext,
  restic: Restic,
  domain: string,
  request: RunRequest,
): Promise<RunResult> {
  const started = Date.now();
  snapshotTags(domain, request.level);
  // One lock for prepare and restic: no other verb may change the chain while restic reads it.
  return withEarlyStart(ctx, domain, request, () =>
    domainOperation(ctx, domain, { verb: `run ${request.level}`, refuseInMaintenance: true }, () =>
      prepareAndBackUp(ctx, restic, domain, request, started),
    ),
  );
}

async function prepareAndBackUp(
  ctx: OpsContext,
  restic: Restic,
  domain: string,
  request: RunRequest,
  started: number,
): Promise<RunResult> {
  const prepare = await timed(() =>
    backupLocked(ctx, domain, {
      level: request.level,
      quiesce: request.quiesce,
      exclude: request.exclude,
      ...(request.maxIncr === undefined ? {} : { maxIncr: request.maxIncr }),
      ...(request.overlayDir === undefined ? {} : { overlayDir: request.overlayDir }),
    }),
  );
  const base = {
    domain: prepare.value.domain,
    level: prepare.value.level,
    dryRun: ctx.dryRun,
    prepare: prepare.value,
    tags: snapshotTags(prepare.value.domain, prepare.value.level),
  };
  if (ctx.dryRun)
    return {
      ...base,
      files: [],
      phases: { prepareMs: prepare.ms, resticMs: 0, retentionMs: 0 },
      durationMs: Date.now() - started,
    };

  const listed = (await backupFiles(ctx, base.domain, request.exclude)).files;
  const devices = deviceFiles(listed);
  const files = listed.filter((file) => !devices.has(file));
  if (files.length === 0)
    throw new UserError(`domain '${base.domain}': nothing to back up after ${base.level}; check 'files'.`);
  const previous = await restic.snapshots({ tags: [base.domain], host: request.host });
  const parent = previous.at(-1)?.id;
  const backup = await timed(() => backUpFiles(ctx, restic, base, files, parent));
  const deviceCopies = await copyDevices(restic, prepare.value, devices, request.host);
  const retention =
    request.retention === undefined ? undefined : await timed(() => forget(restic, base.domain, request));
  return {
    ...base,
    files,
    ...(parent === undefined ? {} : { parent }),
    restic: backup.value,
    devices: deviceCopies,
    ...(retention === undefined ? {} : { retention: retention.value }),
    phases: { prepareMs: prepare.ms, resticMs: backup.ms, retentionMs: retention?.ms ?? 0 },
    durationMs: Date.now() - started,
  };
}

/** `restic backup` of the frozen layers and dumps; its failure leaves the chain as `backup` left it. */
async function backUpFiles(
  ctx: OpsContext,
  restic: Restic,
  run: { readonly domain: string; readonly level: string; readonly tags: readonly string[] },
  files: readonly string[],
  parent: string | undefined,
): Promise<ResticBackupSummary> {
  try {
    return await restic.backup(files, {
      tags: run.tags,
      ...(parent === undefined ? {} : { parent }),
      onProgress: (percent) => {
        ctx.progress({ domain: run.domain, target: 'restic', job: 'backup', percent });
      },
    });
  } catch (error) {
    if (error instanceof ResticError)
      throw new UserError(
        `domain '${run.domain}': ${error.message}\nThe ${run.level} snapshot stays in place and the domain ` +
          'keeps running; the next run backs up everything frozen so far.',
        { cause: error },
      );
    throw error;
  }
}

/** Retention: `restic forget` on this domain's snapshots of this host. */
function forget(restic: Restic, domain: string, request: RunRequest): Promise<ForgetResult> {
  return restic.forget({
    tag: domain,
    host: request.host,
    rules: request.retention ?? {},
    prune: request.prune,
  });
}
