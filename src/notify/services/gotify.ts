import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { hostOrigin, httpService } from '../service.js';
import { QueryReader, ServiceUrlError, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface GotifyConfig {
  readonly host: string;
  /** sub-path the server lives under, without trailing slash ("" at the root) */
  readonly path: string;
  readonly token: string;
  readonly priority: number;
  readonly title: string;
  readonly disableTls: boolean;
}

export function parseGotify(parts: UrlParts): GotifyConfig {
  requirePart(parts, 'host', parts.hostname, 'the Gotify server host');
  const segments = [...parts.segments];
  const token = segments.pop() ?? '';
  if (!/^A[A-Za-z0-9._-]{14}$/.test(token)) {
    throw new ServiceUrlError(
      'gotify',
      'token',
      `${token === '' ? 'missing' : 'malformed'}; expected the 15-character application token starting with A as the last path part`,
    );
  }
  const query = new QueryReader(parts, ['priority', 'title', 'disabletls']);
  const config = {
    host: parts.host,
    path: segments.map((s) => `/${encodeURIComponent(s)}`).join(''),
    token,
    priority: query.int('priority', 0, -2147483648, 2147483647),
    title: query.string('title', 'unifi-backup'),
    disableTls: query.bool('disabletls', false),
  };
  query.done();
  return config;
}

export function gotifyRequest(config: GotifyConfig, message: NotifyMessage): HttpRequest {
  return jsonRequest(
    'POST',
    `${hostOrigin(config.host, config.disableTls)}${config.path}/message?token=${encodeURIComponent(config.token)}`,
    { message: message.body, title: message.title ?? config.title, priority: config.priority },
  );
}

export const gotifyService = httpService<GotifyConfig>({
  scheme: 'gotify',
  shape: 'gotify://HOST[:PORT][/SUBPATH]/TOKEN[?priority=N&title=…&disabletls=yes]',
  example: 'gotify://gotify.example.com:443/AzyoeNS.D4iJLVa/?priority=5',
  parse: parseGotify,
  secrets: (config) => [config.token],
  requests: gotifyRequest,
});
