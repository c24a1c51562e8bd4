import { hostname } from 'node:os';
import { formatBytes } from '../bytes.js';
import * as z from '../schema.js';
import {
  NotifyConfigError,
  loadNotifyConfig,
  notifyFileSchema,
  resolveAliases,
  validateNotifyConfig,
} from './config.js';
import type { NotifyConfig } from './config.js';
import type { NotifyMessage } from './message.js';
import { sendNotifications } from './send.js';
import type { SendOptions, SendResult } from './send.js';

/** What a verb reports when it ends. */
export interface Outcome {
  /** backup, sync, verify, … */
  readonly verb: string;
  readonly domain: string;
  readonly ok: boolean;
  /** incr, diff, full, … */
  readonly level?: string;
  readonly host?: string;
  readonly durationMs?: number;
  readonly bytes?: number;
  readonly error?: string;
}

export const placeholders = [
  'verb',
  'domain',
  'level',
  'host',
  'duration',
  'bytes',
  'error',
  'status',
] as const;

const template = z.string().check(
  z.refine(
    (text) =>
      [...text.matchAll(/\{\{\s*([^}\s]*)\s*\}\}/g)].every((m) =>
        (placeholders as readonly string[]).includes(m[1] ?? ''),
      ),
    {
      error: `unknown placeholder; use ${placeholders.map((p) => `{{${p}}}`).join(', ')}`,
    },
  ),
);

const messageTemplate = z.strictObject({ title: z.optional(template), body: z.optional(template) });

/** The `notify:` section of the tool's config.yaml. */
export const notifyHookSchema = z.strictObject({
  /** path of a notify.yaml holding the aliases */
  config: z.optional(z.string()),
  /** aliases given inline instead of (or on top of) a notify.yaml */
  aliases: z.optional(notifyFileSchema.shape.aliases),
  /** environment variables the notify files may expand beyond UNIFI_BACKUP_* and NOTIFY_* */
  environment: z._default(
    z.array(z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a variable name'))),
    [],
  ),
  'on-failure': z._default(z.array(z.string()), []),
  'on-success': z._default(z.array(z.string()), []),
  templates: z.optional(
    z.strictObject({ success: z.optional(messageTemplate), failure: z.optional(messageTemplate) }),
  ),
});
export type NotifyHookConfig = z.input<typeof notifyHookSchema>;

export const defaultTemplates = {
  success: {
    title: 'unifi-backup: {{verb}} {{level}} of {{domain}} succeeded on {{host}}',
    body: 'Domain: {{domain}}\nLevel: {{level}}\nHost: {{host}}\nDuration: {{duration}}\nData: {{bytes}}',
  },
  failure: {
    title: 'unifi-backup: {{verb}} {{level}} of {{domain}} FAILED on {{host}}',
    body: 'Domain: {{domain}}\nLevel: {{level}}\nHost: {{host}}\nDuration: {{duration}}\nError: {{error}}',
  },
} as const;

/** A duration as hours, minutes and seconds (`1h 2m 3s`), unlike the terminal's seconds. */
export function formatDurationHms(ms: number): string {
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${m}m ${s}s`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

function fill(text: string, values: Record<string, string>): string {
  return text.replace(/\{\{\s*([^}\s]*)\s*\}\}/g, (_, name: string) => values[name] ?? '');
}

/** The message for an outcome: a pure function of the outcome and the (possibly overridden) templates. */
export function renderOutcome(outcome: Outcome, templates?: NotifyHookConfig['templates']): NotifyMessage {
  const kind = outcome.ok ? 'success' : 'failure';
  const chosen = { ...defaultTemplates[kind], ...(templates?.[kind] ?? {}) };
  const values: Record<string, string> = {
    verb: outcome.verb,
    domain: outcome.domain,
    level: outcome.level ?? '-',
    host: outcome.host ?? hostname(),
    duration: outcome.durationMs === undefined ? '-' : formatDurationHms(outcome.durationMs),
    bytes: outcome.bytes === undefined ? '-' : formatBytes(outcome.bytes),
    error: outcome.error ?? '-',
    status: outcome.ok ? 'succeeded' : 'failed',
  };
  return {
    title: fill(chosen.title, values).replace(/\s+/g, ' ').trim(),
    body: fill(chosen.body, values),
  };
}

/**
 * Sends the outcome of a verb to the aliases of `on-success` or `on-failure`. Never throws for a
 * failed notification (the backup's own result matters more); the results say what was sent.
 * A bad notify section throws NotifyConfigError so the user fixes it.
 */
export async function notifyOutcome(
  config: NotifyHookConfig,
  outcome: Outcome,
  options: SendOptions & { readonly env?: NodeJS.ProcessEnv } = {},
): Promise<SendResult[]> {
  const hook = notifyHookSchema.safeParse(config);
  if (!hook.success) {
    throw new NotifyConfigError(
      'notify',
      hook.error.issues.map((i) => `notify.${i.path.map(String).join('.')}: ${i.message}`),
    );
  }
  const names = outcome.ok ? hook.data['on-success'] : hook.data['on-failure'];
  if (names.length === 0) return [];
  const { env = process.env, ...sendOptions } = options;
  const fromFile: NotifyConfig | undefined =
    hook.data.config === undefined
      ? undefined
      : await loadNotifyConfig(hook.data.config, env, hook.data.environment);
  const inline = validateNotifyConfig(
    'notify',
    { aliases: hook.data.aliases ?? {} },
    env,
    hook.data.environment,
  );
  const merged: NotifyConfig = {
    file: hook.data.config ?? 'notify',
    aliases: new Map([...(fromFile?.aliases ?? []), ...inline.aliases]),
    secrets: [...(fromFile?.secrets ?? []), ...inline.secrets],
  };
  const targets = resolveAliases(merged, names);
  return sendNotifications(targets, renderOutcome(outcome, hook.data.templates), {
    ...sendOptions,
    extraSecrets: [...(options.extraSecrets ?? []), ...merged.secrets],
  });
}
