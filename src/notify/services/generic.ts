import { basicAuth } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { httpService } from '../service.js';
import { ServiceUrlError, falsyWords, requirePart, truthyWords } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface GenericConfig {
  /** the target URL, query string included (reserved parameters removed) */
  readonly webhookUrl: string;
  readonly method: string;
  readonly contentType: string;
  readonly template: '' | 'json';
  readonly title: string;
  readonly titleKey: string;
  readonly messageKey: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly extraData: Readonly<Record<string, string>>;
  readonly user: string;
  readonly password: string;
}

const reserved = ['contenttype', 'disabletls', 'template', 'title', 'titlekey', 'messagekey', 'method'];
/** shoutrrr's prefix for a forwarded query parameter whose name is a reserved one (`__title=x` → `title=x`). */
const escapePrefix = '__';
// fetch refuses these methods: they are not for sending a message.
const forbiddenMethods = ['CONNECT', 'TRACE', 'TRACK'];

/** `@acceptLanguage` → `Accept-Language`, as shoutrrr does. */
export function headerName(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .split('-')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('-');
}

export function parseGeneric(parts: UrlParts): GenericConfig {
  const host = requirePart(parts, 'host', parts.host, 'the webhook host');
  const settings = new Map<string, string>();
  const headers: Record<string, string> = {};
  const extraData: Record<string, string> = {};
  const forwarded = new URLSearchParams();
  const viaScheme = parts.scheme.startsWith('generic+') ? parts.scheme.slice('generic+'.length) : '';
  if (viaScheme !== '' && viaScheme !== 'http' && viaScheme !== 'https') {
    throw new ServiceUrlError(
      parts.scheme,
      'scheme',
      'expected generic://, generic+http:// or generic+https://',
    );
  }
  for (const [key, value] of parts.rawQuery) {
    const lower = key.toLowerCase();
    if (key.startsWith('@') && key.length > 1) headers[headerName(key.slice(1))] = value;
    else if (key.startsWith('$') && key.length > 1) extraData[key.slice(1)] = value;
    // generic+http(s):// is the target URL as is: its whole query goes to the target.
    else if (viaScheme === '' && reserved.includes(lower)) settings.set(lower, value);
    else if (
      viaScheme === '' &&
      reserved.includes(lower.slice(escapePrefix.length)) &&
      key.startsWith(escapePrefix)
    )
      forwarded.append(key.slice(escapePrefix.length), value);
    else forwarded.append(key, value);
  }
  const bad = (key: string, problem: string): never => {
    throw new ServiceUrlError(parts.scheme, `query parameter "${key}"`, problem);
  };
  const disableTlsText = (settings.get('disabletls') ?? '').toLowerCase();
  if (!['', ...truthyWords, ...falsyWords].includes(disableTlsText)) bad('disabletls', 'expected yes or no');
  const disableTls = truthyWords.includes(disableTlsText) || viaScheme === 'http';
  const method = (settings.get('method') ?? 'POST').toUpperCase();
  if (!/^[A-Z0-9!#$%&'*+.^_`|~-]+$/.test(method) || forbiddenMethods.includes(method))
    bad('method', 'expected an HTTP method such as POST, PUT, PATCH or GET');
  const template = (settings.get('template') ?? '').toLowerCase();
  if (template !== '' && template !== 'json') bad('template', 'only "json" is supported');
  const query = forwarded.toString();
  const path = parts.segments.map(encodeURIComponent).join('/');
  return {
    webhookUrl: `${disableTls ? 'http' : 'https'}://${host}/${path}${parts.path.endsWith('/') && path !== '' ? '/' : ''}${query ? `?${query}` : ''}`,
    method,
    contentType: settings.get('contenttype') ?? 'application/json',
    template: template as GenericConfig['template'],
    title: settings.get('title') ?? '',
    titleKey: settings.get('titlekey') ?? 'title',
    messageKey: settings.get('messagekey') ?? 'message',
    headers,
    extraData,
    user: parts.user,
    password: parts.password,
  };
}

export function genericRequest(config: GenericConfig, message: NotifyMessage): HttpRequest {
  const title = message.title ?? config.title;
  const body =
    config.template === 'json'
      ? JSON.stringify({
          ...(title ? { [config.titleKey]: title } : {}),
          [config.messageKey]: message.body,
          ...config.extraData,
        })
      : message.body;
  const auth: Record<string, string> =
    config.user !== '' || config.password !== ''
      ? { Authorization: basicAuth(config.user, config.password) }
      : {};
  return {
    method: config.method,
    url: config.webhookUrl,
    headers: { 'Content-Type': config.contentType, Accept: config.contentType, ...auth, ...config.headers },
    // fetch, like the HTTP specs, sends no body with GET or HEAD.
    ...(config.method === 'GET' || config.method === 'HEAD' ? {} : { body }),
  };
}

export const genericService = httpService<GenericConfig>({
  scheme: 'generic',
  aliases: ['generic+http', 'generic+https'],
  shape:
    'generic://HOST[:PORT]/PATH[?template=json&method=POST&contenttype=…&@Header=value&$field=value&__title=forwarded&disabletls=yes] | generic+https://HOST/PATH?…',
  example: 'generic+https://hooks.example.com/backup-events?template=json&@Authorization=Bearer+s3cr3t',
  parse: parseGeneric,
  secrets(config) {
    const url = new URL(config.webhookUrl);
    return [
      config.password,
      ...(config.user !== '' || config.password !== ''
        ? [basicAuth(config.user, config.password).slice('Basic '.length)]
        : []),
      ...[...url.searchParams.values()],
      ...Object.values(config.headers),
      ...url.pathname.split('/').filter((s) => s.length >= 16),
    ];
  },
  requests: genericRequest,
});
