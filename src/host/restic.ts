import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { ProgramResult, Runner } from './runner.js';

/** Where the repository is and how to open it. Secrets travel in the environment, never in argv. */
export interface ResticSettings {
  readonly repository: string;
  readonly passwordFile?: string;
  readonly passwordCommand?: string;
  readonly host?: string;
  /** `-o KEY=VALUE` options. */
  readonly options: readonly string[];
  /** Extra environment; every value is a secret. */
  readonly env: Readonly<Record<string, string>>;
  readonly cacheDir?: string;
  /** How long a repository lock held by another process or host is waited for (default 300 s). */
  readonly lockWaitSeconds?: number;
}

/** How the wait for a repository lock passes time and tells about it (tests shorten it). */
export interface LockWaiting {
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: (line: string) => void;
}

const defaultLockWaitSeconds = 300;
const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** restic 0.14 has no --retry-lock: a locked repository is tried again after this long, growing. */
export function lockRetryDelays(waitSeconds: number): number[] {
  const delays: number[] = [];
  let total = 0;
  for (let next = 2000; total < waitSeconds * 1000; next = Math.min(next * 2, 30_000)) {
    const delay = Math.min(next, waitSeconds * 1000 - total);
    delays.push(delay);
    total += delay;
  }
  return delays;
}

/** "PID 4242 on host-b" from restic's "repository is already locked … by PID 4242 on host-b by root". */
export function lockHolder(stderr: string): string | undefined {
  const match = /already locked (?:exclusively )?by (PID \d+ on \S+)/.exec(stderr);
  return match?.[1];
}

export type ResticFailure = 'wrong-password' | 'no-repository' | 'locked' | 'failed';

/** restic failed; the message is redacted (no URL credentials, no secret values). */
export class ResticError extends UserError {
  readonly failure: ResticFailure;
  constructor(message: string, failure: ResticFailure) {
    super(message);
    this.failure = failure;
  }
}

export interface ResticSnapshot {
  readonly id: string;
  readonly shortId: string;
  readonly time: Date;
  readonly hostname: string;
  readonly paths: readonly string[];
  readonly tags: readonly string[];
}

export interface ResticBackupSummary {
  readonly snapshotId: string;
  readonly filesNew: number;
  readonly filesChanged: number;
  readonly filesUnmodified: number;
  /** Sizes of every file in the snapshot. */
  readonly bytesProcessed: number;
  /** What restic actually read: the new and changed files (unchanged ones are known from the parent). */
  readonly bytesRead: number;
  /** What the repository grew by, after deduplication and compression. */
  readonly bytesAdded: number;
}

export interface ResticLsEntry {
  readonly path: string;
  readonly type: string;
  readonly size: number;
}

export interface RetentionRules {
  readonly keepLast?: number;
  readonly keepHourly?: number;
  readonly keepDaily?: number;
  readonly keepWeekly?: number;
  readonly keepMonthly?: number;
  readonly keepYearly?: number;
  readonly keepWithin?: string;
}

export interface ForgetResult {
  readonly kept: number;
  readonly removed: readonly string[];
}

const keepFlags: readonly [keyof RetentionRules, string][] = [
  ['keepLast', '--keep-last'],
  ['keepHourly', '--keep-hourly'],
  ['keepDaily', '--keep-daily'],
  ['keepWeekly', '--keep-weekly'],
  ['keepMonthly', '--keep-monthly'],
  ['keepYearly', '--keep-yearly'],
  ['keepWithin', '--keep-within'],
];

export function retentionArgs(rules: RetentionRules): string[] {
  return keepFlags.flatMap(([key, flag]) => {
    const value = rules[key];
    return value === undefined ? [] : [flag, String(value)];
  });
}

/** `scheme://user:password@host` → `scheme://user:***@host`, and every known secret blanked. */
export function redactRestic(text: string, secrets: readonly string[]): string {
  let result = text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]*@/gi, '$1***@');
  for (const secret of [...secrets].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length))
    result = result.split(secret).join('***');
  return result;
}

interface RawSnapshot {
  id: string;
  short_id?: string;
  time: string;
  hostname: string;
  paths?: string[];
  tags?: string[];
}

function toSnapshot(raw: RawSnapshot): ResticSnapshot {
  return {
    id: raw.id,
    shortId: raw.short_id ?? raw.id.slice(0, 8),
    time: new Date(raw.time),
    hostname: raw.hostname,
    paths: raw.paths ?? [],
    tags: raw.tags ?? [],
  };
}

/** An `--include` pattern matching exactly one path: restic reads `*?[\\` in patterns as globs. */
export function includePattern(treePath: string): string {
  return treePath.replace(/[*?[\\]/g, (c) => `\\${c}`);
}

/** One JSON value per line; restic mixes in the odd non-JSON line, which is skipped. */
export function jsonLines(text: string): unknown[] {
  return text.split('\n').flatMap((line) => {
    const trimmed = line.trim();
    if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return [];
    try {
      return [JSON.parse(trimmed) as unknown];
    } catch {
      return [];
    }
  });
}

interface RawBackupMessage {
  message_type?: string;
  action?: string;
  item?: string;
  data_size?: number;
  percent_done?: number;
  snapshot_id?: string;
  files_new?: number;
  files_changed?: number;
  files_unmodified?: number;
  total_bytes_processed?: number;
  data_added?: number;
}

/** The summary of `restic backup -v --json`, with the bytes read summed from the per-file lines. */
export function parseBackupOutput(stdout: string): ResticBackupSummary | undefined {
  const messages = jsonLines(stdout) as RawBackupMessage[];
  const summary = messages.find((m) => m.message_type === 'summary');
  if (summary?.snapshot_id === undefined) return undefined;
  const bytesRead = messages
    .filter(
      (m) =>
        m.message_type === 'verbose_status' &&
        (m.action === 'new' || m.action === 'modified') &&
        m.item !== undefined &&
        !m.item.endsWith('/'),
    )
    .reduce((sum, m) => sum + (m.data_size ?? 0), 0);
  return {
    snapshotId: summary.snapshot_id,
    filesNew: summary.files_new ?? 0,
    filesChanged: summary.files_changed ?? 0,
    filesUnmodified: summary.files_unmodified ?? 0,
    bytesProcessed: summary.total_bytes_processed ?? 0,
    bytesRead,
    bytesAdded: summary.data_added ?? 0,
  };
}

interface RawForgetGroup {
  keep?: unknown[] | null;
  remove?: { id?: string; short_id?: string }[] | null;
}

export function parseForgetOutput(stdout: string): ForgetResult {
  const groups = jsonLines(stdout).flatMap((v) => (Array.isArray(v) ? (v as RawForgetGroup[]) : []));
  return {
    kept: groups.reduce((n, g) => n + (g.keep?.length ?? 0), 0),
    removed: groups.flatMap((g) => (g.remove ?? []).map((s) => s.short_id ?? s.id?.slice(0, 8) ?? '?')),
  };
}

function failureOf(stderr: string): ResticFailure {
  if (/wrong password|no key found/i.test(stderr)) return 'wrong-password';
  if (/Is there a repository at the following location/i.test(stderr)) return 'no-repository';
  if (/repository is already locked/i.test(stderr)) return 'locked';
  return 'failed';
}

const hints: Record<ResticFailure, string> = {
  'wrong-password':
    'Check the password (restic.password-file in the config file, or RESTIC_PASSWORD / RESTIC_PASSWORD_FILE).',
  'no-repository':
    'Check that the repository is reachable and exists; create a new one with --init (run) or restic init.',
  locked:
    'Another restic process holds the repository; wait for it, or remove a stale lock with restic unlock.',
  failed: 'Run it again with --debug to see the restic command.',
};

/** Typed access to restic. The repository and its password reach restic through the environment. */
export class Restic {
  private readonly secrets: string[];

  constructor(
    private readonly runner: Runner,
    private readonly settings: ResticSettings,
    processEnv: NodeJS.ProcessEnv = process.env,
    private readonly waiting: Partial<LockWaiting> = {},
  ) {
    this.secrets = [
      ...Object.values(settings.env),
      ...['RESTIC_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'B2_ACCOUNT_KEY', 'AZURE_ACCOUNT_KEY']
        .map((name) => processEnv[name])
        .filter((v): v is string => v !== undefined),
    ];
  }

  /** The repository as it may be shown: credentials in a URL are blanked. */
  get repositoryText(): string {
    return this.redact(this.settings.repository);
  }

  redact(text: string): string {
    return redactRestic(text, this.secrets);
  }

  private environment(): Record<string, string> {
    const s = this.settings;
    return {
      ...s.env,
      RESTIC_REPOSITORY: s.repository,
      ...(s.passwordFile === undefined ? {} : { RESTIC_PASSWORD_FILE: s.passwordFile }),
      ...(s.passwordCommand === undefined ? {} : { RESTIC_PASSWORD_COMMAND: s.passwordCommand }),
      ...(s.cacheDir === undefined ? {} : { RESTIC_CACHE_DIR: s.cacheDir }),
    };
  }

  private async run(
    args: readonly string[],
    what: string,
    onOutput?: (chunk: string) => void,
    files: { readonly inputFile?: string; readonly outputFile?: string } = {},
  ): Promise<ProgramResult> {
    const argv = ['restic', ...this.settings.options.flatMap((o) => ['-o', o]), ...args];
    const attempt = () =>
      this.runner({
        argv,
        env: this.environment(),
        ...(onOutput === undefined ? {} : { onOutput }),
        ...files,
      });
    let result = await attempt();
    const waitSeconds = this.settings.lockWaitSeconds ?? defaultLockWaitSeconds;
    let waited = 0;
    for (const delay of lockRetryDelays(waitSeconds)) {
      if (result.exitCode === 0 || failureOf(result.stderr) !== 'locked') break;
      if (waited === 0)
        this.waiting.log?.(
          `${what}: the repository is locked by ${lockHolder(result.stderr) ?? 'another restic'}; ` +
            `waiting up to ${waitSeconds} s (restic.lock-wait)`,
        );
      await (this.waiting.sleep ?? defaultSleep)(delay);
      waited += delay;
      result = await attempt();
    }
    if (result.exitCode !== 0) {
      const failure = failureOf(result.stderr);
      if (failure === 'locked' && waited > 0)
        throw new ResticError(
          this.redact(
            `${what} (repository ${this.settings.repository}): the repository stayed locked by ` +
              `${lockHolder(result.stderr) ?? 'another restic'} for ${Math.round(waited / 1000)} s, so nothing ` +
              'was done. If that restic still runs, try again later or raise restic.lock-wait; if it died, ' +
              'remove its stale lock with restic unlock (on the host that made it).',
          ),
          failure,
        );
      const detail =
        result.stderr
          .split('\n')
          .filter((l) => l.trim() !== '' && !l.startsWith('{'))
          .slice(-6)
          .join('\n') || `exit code ${result.exitCode}`;
      throw new ResticError(
        this.redact(`${what} (repository ${this.settings.repository}) failed: ${detail}\n${hints[failure]}`),
        failure,
      );
    }
    return result;
  }

  /** False when nothing is at the repository's location; throws when it cannot be opened at all. */
  async exists(): Promise<boolean> {
    try {
      await this.run(['cat', 'config'], 'opening the restic repository');
      return true;
    } catch (error) {
      if (
        error instanceof ResticError &&
        error.failure === 'no-repository' &&
        /no such file|does not exist|not found|404/i.test(error.message)
      )
        return false;
      throw error;
    }
  }

  async init(): Promise<void> {
    await this.run(['init'], 'creating the restic repository');
  }

  /** Backs up exactly the given files (a verbatim list: any character but newline is data). */
  async backup(
    files: readonly string[],
    options: { tags: readonly string[]; parent?: string; onProgress?: (percent: number) => void },
  ): Promise<ResticBackupSummary> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'unifi-backup-restic-'));
    try {
      const list = path.join(dir, 'files');
      await writeFile(list, files.map((f) => `${f}\n`).join(''), { mode: 0o600 });
      let pending = '';
      const onOutput =
        options.onProgress === undefined
          ? undefined
          : (chunk: string) => {
              const lines = (pending + chunk).split('\n');
              pending = lines.pop() ?? '';
              for (const line of lines) {
                const match = /"message_type":"status","percent_done":([\d.e-]+)/.exec(line);
                if (match) options.onProgress?.(Math.floor(Number(match[1]) * 100));
              }
            };
      const result = await this.run(
        [
          'backup',
          '--json',
          '--verbose',
          '--files-from-verbatim',
          list,
          ...options.tags.flatMap((t) => ['--tag', t]),
          ...(this.settings.host === undefined ? [] : ['--host', this.settings.host]),
          ...(options.parent === undefined ? [] : ['--parent', options.parent]),
        ],
        'restic backup',
        onOutput,
      );
      const summary = parseBackupOutput(result.stdout);
      if (summary === undefined)
        throw new ResticError('restic backup printed no summary; run it again with --debug', 'failed');
      return summary;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Backs up a block device, read whole through `--stdin` (restic 0.14 stores a device node, not its
   * data, when given its path), as `/NAME` in a snapshot of its own.
   */
  async backupDevice(device: string, name: string, tags: readonly string[]): Promise<ResticBackupSummary> {
    const result = await this.run(
      [
        'backup',
        '--json',
        '--stdin',
        '--stdin-filename',
        name,
        ...tags.flatMap((t) => ['--tag', t]),
        ...(this.settings.host === undefined ? [] : ['--host', this.settings.host]),
      ],
      `restic backup of the device ${device}`,
      undefined,
      { inputFile: device },
    );
    const summary = parseBackupOutput(result.stdout);
    if (summary === undefined)
      throw new ResticError('restic backup printed no summary; run it again with --debug', 'failed');
    return summary;
  }

  /** Snapshots holding every given tag (restic's `--tag a,b` means all of them), oldest first. */
  async snapshots(filter: { tags?: readonly string[]; host?: string } = {}): Promise<ResticSnapshot[]> {
    const result = await this.run(
      [
        'snapshots',
        '--json',
        ...(filter.tags === undefined || filter.tags.length === 0 ? [] : ['--tag', filter.tags.join(',')]),
        ...(filter.host === undefined ? [] : ['--host', filter.host]),
      ],
      'listing restic snapshots',
    );
    const raw = JSON.parse(result.stdout.trim() || '[]') as RawSnapshot[] | null;
    return (raw ?? []).map(toSnapshot).sort((a, b) => a.time.getTime() - b.time.getTime());
  }

  /** Applies keep rules to the snapshots carrying `tag`, grouped by host (paths change every run). */
  async forget(options: {
    tag: string;
    host?: string;
    rules: RetentionRules;
    prune: boolean;
  }): Promise<ForgetResult> {
    const result = await this.run(
      [
        'forget',
        '--json',
        '--tag',
        options.tag,
        '--group-by',
        'host',
        ...(options.host === undefined ? [] : ['--host', options.host]),
        ...retentionArgs(options.rules),
        ...(options.prune ? ['--prune'] : []),
      ],
      'restic forget',
    );
    return parseForgetOutput(result.stdout);
  }

  /** Restores exactly the given paths of a snapshot (paths as its tree holds them) under `target`. */
  async restoreFiles(snapshotId: string, target: string, paths: readonly string[]): Promise<void> {
    // Without any --include restic restores the whole snapshot.
    if (paths.length === 0) return;
    await this.run(
      ['restore', snapshotId, '--target', target, ...paths.flatMap((p) => ['--include', includePattern(p)])],
      `restoring from restic snapshot ${snapshotId}`,
    );
  }

  /** Writes one file of a snapshot (a path its tree holds) to `output` (a block device), streamed. */
  async dump(snapshotId: string, treePath: string, output: string): Promise<void> {
    await this.run(
      ['dump', snapshotId, treePath],
      `writing ${treePath} of restic snapshot ${snapshotId} to ${output}`,
      undefined,
      {
        outputFile: output,
      },
    );
  }

  async check(): Promise<void> {
    await this.run(['check'], 'restic check');
  }

  /** Every node of a snapshot. */
  async ls(snapshotId: string): Promise<ResticLsEntry[]> {
    const result = await this.run(['ls', '--json', snapshotId], `listing restic snapshot ${snapshotId}`);
    return (
      jsonLines(result.stdout) as { struct_type?: string; path?: string; type?: string; size?: number }[]
    )
      .filter((n) => n.struct_type === 'node' && n.path !== undefined)
      .map((n) => ({ path: n.path ?? '', type: n.type ?? '', size: n.size ?? 0 }));
  }
}
