import type { HttpClient, HttpRequest } from './http-request.js';
import type { NotifyMessage } from './message.js';
import type { UrlParts } from './service-url.js';

/** What a service needs at send time: the HTTP client and the test hooks. */
export interface SendContext {
  readonly http: HttpClient;
  readonly timeoutMs: number;
  /** Adds a secret learnt while sending (a session token from a login) to what is blanked out of output. */
  readonly secret: (value: string) => void;
  /** Where logger:// writes its messages (standard error unless a test captures it). */
  readonly log: (text: string) => void;
  /**
   * Replaces the fixed API origin (https://api.telegram.org, …) of services whose URL names no host.
   * Only the tests set it, through SendOptions: nothing in the environment can redirect requests.
   */
  readonly apiBase?: string;
  /** Extra trusted CA certificates (PEM) for smtp; a test hook for self-signed servers. */
  readonly smtpCa?: string;
}

export interface NotifyService<C> {
  readonly scheme: string;
  /** Other schemes accepted for this service (hangouts for googlechat). */
  readonly aliases?: readonly string[];
  /** The URL shape shown by `notify services` and the docs. */
  readonly shape: string;
  readonly example: string;
  parse(parts: UrlParts): C;
  /** The values of the config that must never be shown. */
  secrets(config: C): string[];
  send(config: C, message: NotifyMessage, context: SendContext): Promise<void>;
}

/** A parsed URL bound to its service, ready to send. */
export interface ServiceTarget {
  readonly scheme: string;
  readonly secrets: readonly string[];
  send(message: NotifyMessage, context: SendContext): Promise<void>;
}

export function apiOrigin(context: SendContext, fixed: string): string {
  return (context.apiBase ?? fixed).replace(/\/+$/, '');
}

export function hostOrigin(host: string, disableTls: boolean): string {
  return `${disableTls ? 'http' : 'https'}://${host}`;
}

type HttpRequests = HttpRequest | HttpRequest[];

/**
 * An HTTP service as it declares itself: what it shares with every service, and the requests a
 * message becomes. A service whose URL names no host also gives its fixed API origin, which the
 * requests then get (or `SendContext.apiBase` in its place).
 */
export type HttpServiceDefinition<C> = Omit<NotifyService<C>, 'send'> &
  (
    | { readonly requests: (config: C, message: NotifyMessage) => HttpRequests }
    | {
        readonly origin: string | ((config: C) => string);
        readonly requests: (config: C, message: NotifyMessage, origin: string) => HttpRequests;
      }
  );

/** A service that sends a message as its requests, one after the other. */
export function httpService<C>(definition: HttpServiceDefinition<C>): NotifyService<C> {
  const requests = (config: C, message: NotifyMessage, context: SendContext): HttpRequests => {
    if (!('origin' in definition)) return definition.requests(config, message);
    const fixed = typeof definition.origin === 'string' ? definition.origin : definition.origin(config);
    return definition.requests(config, message, apiOrigin(context, fixed));
  };
  return {
    scheme: definition.scheme,
    aliases: definition.aliases,
    shape: definition.shape,
    example: definition.example,
    parse: definition.parse,
    secrets: definition.secrets,
    async send(config, message, context) {
      for (const request of [requests(config, message, context)].flat()) await context.http(request);
    },
  };
}
