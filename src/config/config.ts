import { readFile, stat } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { UsageError } from '../errors.js';
import * as z from '../schema.js';
import { defaultConfigFile } from './location.js';
import { notifyHookSchema } from '../notify/templates.js';

const count = z.number().check(z.int('a whole number'), z.gte(1, 'at least 1'));
const duration = z
  .string()
  .check(z.regex(/^(\d+[ymdh])+$/, 'a duration such as 1y5m7d2h (years, months, days, hours)'));

/** An optional string that may not be empty; `message` says what to give instead. */
const nonEmpty = (message?: string) => z.optional(z.string().check(z.minLength(1, message)));
const variableName = z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a variable name'));

/** Where restic keeps the backups; each key mirrors a restic option or environment variable. */
export const resticSectionSchema = z.strictObject({
  repository: nonEmpty('empty; give a path or URL such as sftp:user@host:/srv/restic'),
  'password-file': nonEmpty('empty; give the path of a file holding the password'),
  'password-command': nonEmpty('empty; give a command that prints the password'),
  /** `restic --host`: the snapshots' host name (default: this machine's). */
  host: nonEmpty(),
  /** `restic -o KEY=VALUE` options, such as `sftp.command=ssh -p 2222 backup@nas -s sftp`. */
  options: z.optional(z.array(z.string().check(z.regex(/^[\w.-]+=/, 'KEY=VALUE, as for restic -o')))),
  /** How long to wait for a repository lock held by another process or host (seconds). */
  'lock-wait': z.optional(z.number().check(z.int('a whole number of seconds'), z.gte(0, 'at least 0'))),
  /** Extra environment for restic, such as AWS_ACCESS_KEY_ID; values are treated as secrets. */
  env: z.optional(z.record(variableName, z.string())),
  'cache-dir': nonEmpty(),
});

/** `restic forget` rules, applied per domain after each run. */
export const retentionSectionSchema = z.strictObject({
  'keep-last': z.optional(count),
  'keep-hourly': z.optional(count),
  'keep-daily': z.optional(count),
  'keep-weekly': z.optional(count),
  'keep-monthly': z.optional(count),
  'keep-yearly': z.optional(count),
  'keep-within': z.optional(duration),
  /** Also run `restic prune` (as `forget --prune`) when snapshots were removed. */
  prune: z.optional(z.boolean()),
});

const seconds = z.number().check(z.int('a whole number of seconds'), z.gte(1, 'at least 1 second'));

/** How long to wait for what can hang (seconds); see src/host/timeouts.ts for the defaults. */
export const timeoutsSectionSchema = z.strictObject({
  virsh: z.optional(seconds),
  'guest-agent': z.optional(seconds),
  'block-job-stall': z.optional(seconds),
});

/** A span such as 26h, 90m, 1d12h (days, hours, minutes, seconds). */
export const interval = z
  .string()
  .check(z.regex(/^(\d+[dhms])+$/, 'a span such as 26h, 90m or 1d12h (days, hours, minutes, seconds)'));

/** When `status` calls a domain stale, failing or in need of attention (docs/status.md). */
export const statusSectionSchema = z.strictObject({
  'stale-after': z.optional(interval),
  'maintenance-after': z.optional(interval),
  failures: z.optional(count),
  'max-chain': z.optional(count),
});

const absolutePath = z.string().check(z.startsWith('/', 'an absolute path'));

/** Settings for one domain, under `domains.<name>`; each wins over the top-level key of its name. */
export const domainSectionSchema = z.strictObject({
  'overlay-dir': z.optional(absolutePath),
});

/** The top-level settings: defaults for the global flags of the same names (a flag wins). */
export const settingsKeys = ['connect', 'lock-dir', 'state-dir', 'max-incr'] as const;

/**
 * config.yaml. Sections belonging to other verbs are let through untouched; each verb validates
 * its own section strictly (`config check` warns about sections it does not know).
 */
export const configSchema = z.looseObject({
  connect: nonEmpty('empty; give a libvirt URI such as qemu:///system'),
  'lock-dir': z.optional(absolutePath),
  'state-dir': z.optional(absolutePath),
  'max-incr': z.optional(count),
  /** Folder for the overlays of block-device disks (their own folder, /dev/VG, holds no files). */
  'overlay-dir': z.optional(absolutePath),
  domains: z.optional(z.record(z.string().check(z.minLength(1)), domainSectionSchema)),
  restic: z.optional(resticSectionSchema),
  retention: z.optional(retentionSectionSchema),
  notify: z.optional(notifyHookSchema),
  timeouts: z.optional(timeoutsSectionSchema),
  status: z.optional(statusSectionSchema),
});

/** Top-level keys this version knows; `config check` warns about any other. */
export const knownConfigKeys: readonly string[] = Object.keys(configSchema.shape);

/** Second pass over a valid config: what is probably a mistake but does not stop a run. */
export function configWarnings(config: Config): string[] {
  return Object.keys(config)
    .filter((key) => !knownConfigKeys.includes(key))
    .map((key) => `${key}: unknown section, ignored (known: ${knownConfigKeys.join(', ')})`);
}

export type Config = z.infer<typeof configSchema>;
export type ResticSection = z.infer<typeof resticSectionSchema>;
export type StatusSection = z.infer<typeof statusSectionSchema>;

/** config.yaml has problems; the message lists every one as `path: message`. */
export class ConfigError extends UsageError {
  readonly problems: readonly string[];
  constructor(file: string, problems: readonly string[]) {
    super(
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  ${p}`).join('\n'),
    );
    this.problems = problems;
  }
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p)).join('.') || '(top level)';
}

/** Validates parsed YAML; every problem becomes one `path: message` line. */
export function validateConfig(file: string, raw: unknown): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  throw new ConfigError(
    file,
    result.error.issues.map((issue) => `${pathText(issue.path)}: ${issue.message}`),
  );
}

const secretKey = /pass(word)?$|token|secret|api-?key/i;
const urlWithCredentials = /:\/\/[^/@\s]*:[^/@\s]+@/;

/** Whether a parsed config holds secrets in clear: restic.env values, credentials in URLs, keys named so. */
export function holdsSecrets(value: unknown, key = ''): boolean {
  if (typeof value === 'string')
    return value !== '' && (secretKey.test(key) || urlWithCredentials.test(value));
  if (Array.isArray(value)) return value.some((v) => holdsSecrets(v, key));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (key === 'env' && entries.length > 0) return true;
    return entries.some(([k, v]) => holdsSecrets(v, k));
  }
  return false;
}

/**
 * Reads the config file. The default file is optional (restic's own environment is enough);
 * a file named with --config must exist. A file anyone may read that holds secrets gets a warning.
 */
export async function loadConfig(
  file: string | undefined,
  warn: (line: string) => void,
): Promise<{ file: string; config: Config }> {
  const path = file ?? defaultConfigFile;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && file === undefined) return { file: path, config: {} };
    throw new UsageError(
      code === 'ENOENT'
        ? `${path}: no such file; check the path given with --config`
        : `${path}: cannot read (${code ?? 'error'})`,
    );
  }
  const document = parseDocument(text, { prettyErrors: false });
  if (document.errors.length > 0)
    throw new ConfigError(
      path,
      document.errors.map((e) => `line ${e.linePos?.[0].line ?? 0}: ${e.message.split('\n')[0] ?? ''}`),
    );
  const raw: unknown = document.toJS();
  const config = validateConfig(path, raw);
  const mode = (await stat(path)).mode;
  if ((mode & 0o004) !== 0 && holdsSecrets(raw))
    warn(
      `${path} holds secrets and is readable by every user (mode ${(mode & 0o777).toString(8)}); ` +
        `make it private: chmod 600 '${path}'`,
    );
  return { file: path, config };
}
