import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { UsageError } from '../errors.js';
import * as z from '../schema.js';
import { parseServiceUrl } from './registry.js';
import type { NotifyTarget } from './send.js';

/** notify.yaml, as the original tool's notify binary read it. */
export const notifyFileSchema = z.strictObject({
  aliases: z.record(
    z.string().check(z.regex(/^[A-Za-z0-9_.-]+$/, 'alias names use letters, digits, ".", "_" and "-"')),
    z.strictObject({
      name: z.optional(z.string()),
      url: z
        .string()
        .check(z.minLength(1, 'empty; give a service URL such as telegram://TOKEN@telegram?chats=ID')),
    }),
  ),
});

export interface NotifyAlias {
  readonly name: string;
  readonly url: string;
}

export interface NotifyConfig {
  readonly file: string;
  readonly aliases: ReadonlyMap<string, NotifyAlias>;
  /** values taken from the environment; treated as secrets */
  readonly secrets: readonly string[];
}

/** notify.yaml (or the notify section of config.yaml) has problems; the message lists every one. */
export class NotifyConfigError extends UsageError {
  readonly problems: readonly string[];
  constructor(file: string, problems: readonly string[]) {
    super(
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
    this.problems = problems;
  }
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p)).join('.') || '(top level)';
}

/** Variables any notify file may use: the tool's own and those named for notifications. */
const allowedPrefixes = ['UNIFI_BACKUP_', 'NOTIFY_'] as const;

/**
 * Whether a notify file may read this environment variable. A file is not trusted with the whole
 * environment (RESTIC_PASSWORD, cloud keys): a URL could carry any of them to its server.
 */
export function mayExpand(name: string, allowed: readonly string[]): boolean {
  return allowedPrefixes.some((prefix) => name.startsWith(prefix)) || allowed.includes(name);
}

/**
 * Replaces ${NAME} with the environment variable's value ($$ for a literal $), so secrets can
 * stay out of the file. Reports unset and not allowed variables as problems.
 */
export function expandEnvironment(
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: PropertyKey[],
  problems: string[],
  secrets: string[],
  allowed: readonly string[] = [],
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([^}]*)\}/g, (match, name: string | undefined) => {
      if (match === '$$') return '$';
      if (name === undefined || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        problems.push(`${pathText(path)}: "\${${name ?? ''}}" is not a valid environment variable reference`);
        return '';
      }
      if (!mayExpand(name, allowed)) {
        problems.push(
          `${pathText(path)}: environment variable ${name} is not allowed here; use a name starting with ` +
            `${allowedPrefixes.join(' or ')}, or list it under notify.environment in config.yaml`,
        );
        return '';
      }
      const found = env[name];
      if (found === undefined) {
        problems.push(`${pathText(path)}: environment variable ${name} is not set`);
        return '';
      }
      secrets.push(found);
      return found;
    });
  }
  if (Array.isArray(value))
    return value.map((v, i) => expandEnvironment(v, env, [...path, i], problems, secrets, allowed));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        expandEnvironment(v, env, [...path, k], problems, secrets, allowed),
      ]),
    );
  }
  return value;
}

/** Validates already-parsed notify settings; every problem is collected as a `path: message` line. */
export function validateNotifyConfig(
  file: string,
  raw: unknown,
  env: NodeJS.ProcessEnv = process.env,
  /** Variables allowed beyond the prefixes (config.yaml's notify.environment). */
  allowed: readonly string[] = [],
): NotifyConfig {
  const problems: string[] = [];
  const secrets: string[] = [];
  const expanded = expandEnvironment(raw ?? {}, env, [], problems, secrets, allowed);
  const result = notifyFileSchema.safeParse(expanded);
  const aliases = new Map<string, NotifyAlias>();
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${pathText(issue.path)}: ${issue.message}`);
  } else {
    for (const [alias, entry] of Object.entries(result.data.aliases)) {
      const path = `aliases.${alias}.url`;
      if (problems.some((p) => p.startsWith(`${path}:`))) continue;
      try {
        parseServiceUrl(entry.url);
        aliases.set(alias, { name: entry.name ?? alias, url: entry.url });
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        problems.push(`${path}: ${error.message}`);
      }
    }
  }
  if (problems.length > 0) throw new NotifyConfigError(file, problems);
  return { file, aliases, secrets };
}

export async function loadNotifyConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  allowed: readonly string[] = [],
): Promise<NotifyConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `${file}: no such file; give the notify.yaml with --config`
        : `${file}: cannot read (${code ?? 'error'})`,
    );
  }
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, lineCounter });
  if (document.errors.length > 0) {
    throw new NotifyConfigError(
      file,
      document.errors.map(
        (e) => `line ${lineCounter.linePos(e.pos[0]).line.toString()}: ${e.message.split('\n')[0] ?? ''}`,
      ),
    );
  }
  return validateNotifyConfig(file, document.toJS(), env, allowed);
}

/** The targets for the named aliases; an unknown name is a usage error naming the known ones. */
export function resolveAliases(config: NotifyConfig, names: readonly string[]): NotifyTarget[] {
  const unknown = names.filter((n) => !config.aliases.has(n));
  if (unknown.length > 0) {
    const known = [...config.aliases.keys()].join(', ') || 'none';
    throw new UsageError(`${config.file}: no alias ${unknown.join(', ')}; known aliases: ${known}`);
  }
  return names.map((alias) => ({ alias, url: config.aliases.get(alias)?.url ?? '' }));
}
