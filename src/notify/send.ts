import { HttpStatusError, fetchClient } from './http-request.js';
import type { HttpClient } from './http-request.js';
import type { NotifyMessage } from './message.js';
import { redactSecrets, redactUrl } from './redact.js';
import { parseServiceUrl } from './registry.js';
import type { SendContext } from './service.js';
import { ServiceUrlError } from './service-url.js';

/** One place to notify: an alias of notify.yaml, or a URL given on the command line. */
export interface NotifyTarget {
  /** the alias name, or "url" for --url */
  readonly alias: string;
  readonly url: string;
}

export interface SendOptions {
  /** per attempt; default 10 s */
  readonly timeoutMs?: number;
  /** further attempts after a failure that may pass on retry; default 2 */
  readonly retries?: number;
  /** first pause between attempts, doubled each time; default 1 s */
  readonly retryDelayMs?: number;
  /** see SendContext.apiBase; only tests set it */
  readonly apiBase?: string;
  /** where logger:// writes; default standard error */
  readonly log?: (text: string) => void;
  readonly smtpCa?: string;
  readonly http?: HttpClient;
  /** secrets known besides those in the URLs (e.g. values of expanded environment variables) */
  readonly extraSecrets?: readonly string[];
}

export interface SendResult {
  readonly alias: string;
  readonly scheme: string;
  /** the URL with credentials, path and query values blanked */
  readonly target: string;
  readonly ok: boolean;
  readonly attempts: number;
  /** redacted: never holds a secret of the URL */
  readonly error?: string;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'timed out';
  const parts = [error.message];
  // fetch hides the reason (refused, DNS, TLS) in the cause.
  let cause: unknown = error.cause;
  while (cause instanceof Error) {
    parts.push(cause.message);
    cause = cause.cause;
  }
  return parts.join(': ');
}

/** Errors of the network or the peer that a later attempt may not meet (Node's and nodemailer's codes). */
const transientCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'ECONNECTION',
  'ESOCKET',
]);

/**
 * Only a failure that may pass on its own is retried: a deterministic one (a refused message, a
 * header the client cannot encode, a reply the service rejects) would fail the same way again.
 */
function retryable(error: unknown): boolean {
  if (error instanceof HttpStatusError) return error.retryable;
  if (!(error instanceof Error)) return false;
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return true;
  // smtp answers with a response code; 5xx means the server refused for good (bad auth, bad address).
  const response = (error as { responseCode?: unknown }).responseCode;
  if (typeof response === 'number') return response < 500;
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== undefined && transientCodes.has(code)) return true;
  }
  return false;
}

// Errors are shortened only after redaction, so a cut cannot leave part of a secret visible.
const maximumErrorLength = 500;

function shownError(error: unknown, secrets: readonly string[]): string {
  const text = redactSecrets(describe(error), secrets);
  return text.length > maximumErrorLength ? `${text.slice(0, maximumErrorLength)}…` : text;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends to one target with retries. Never throws: the result says what happened, without secrets. */
export async function sendToTarget(
  target: NotifyTarget,
  message: NotifyMessage,
  options: SendOptions = {},
): Promise<SendResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const retries = options.retries ?? 2;
  const extra = options.extraSecrets ?? [];
  const shown = redactSecrets(redactUrl(target.url), extra);
  const schemeOf = /^([a-z][a-z0-9+.-]*):/i.exec(target.url.trim())?.[1]?.toLowerCase() ?? 'unknown';
  let parsed;
  try {
    parsed = parseServiceUrl(target.url);
  } catch (error) {
    const text = error instanceof ServiceUrlError ? error.message : describe(error);
    return {
      alias: target.alias,
      scheme: schemeOf,
      target: shown,
      ok: false,
      attempts: 0,
      error: redactSecrets(text, extra),
    };
  }
  const secrets = [...parsed.secrets, ...extra];
  const context: SendContext = {
    http: options.http ?? fetchClient(timeoutMs),
    timeoutMs,
    secret: (value) => secrets.push(value),
    log: options.log ?? ((text) => process.stderr.write(text)),
    ...(options.apiBase === undefined ? {} : { apiBase: options.apiBase }),
    ...(options.smtpCa === undefined ? {} : { smtpCa: options.smtpCa }),
  };
  const base = { alias: target.alias, scheme: parsed.scheme, target: redactSecrets(shown, secrets) };
  let attempts = 0;
  for (;;) {
    attempts += 1;
    try {
      await parsed.send(message, context);
      return { ...base, ok: true, attempts };
    } catch (error) {
      if (attempts > retries || !retryable(error)) {
        return { ...base, ok: false, attempts, error: shownError(error, secrets) };
      }
      await pause((options.retryDelayMs ?? 1000) * 2 ** (attempts - 1));
    }
  }
}

/** Sends to every target at once; one failing does not stop the others. */
export async function sendNotifications(
  targets: readonly NotifyTarget[],
  message: NotifyMessage,
  options: SendOptions = {},
): Promise<SendResult[]> {
  return Promise.all(targets.map((target) => sendToTarget(target, message, options)));
}
