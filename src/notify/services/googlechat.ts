import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { hostOrigin, httpService } from '../service.js';
import { QueryReader, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface GooglechatConfig {
  readonly host: string;
  readonly path: string;
  readonly key: string;
  readonly token: string;
  readonly disableTls: boolean;
}

export function parseGooglechat(parts: UrlParts): GooglechatConfig {
  const query = new QueryReader(parts, ['key', 'token', 'disabletls']);
  const config = {
    host: parts.host === '' ? 'chat.googleapis.com' : parts.host,
    path: requirePart(
      parts,
      'path',
      parts.path.replace(/^\/$/, ''),
      'the webhook path /v1/spaces/SPACE/messages',
    ),
    key: query.required('key', 'the key from the webhook URL'),
    token: query.required('token', 'the token from the webhook URL'),
    disableTls: query.bool('disabletls', false),
  };
  query.done();
  return config;
}

export function googlechatRequest(config: GooglechatConfig, message: NotifyMessage): HttpRequest {
  const query = new URLSearchParams({ key: config.key, token: config.token });
  return jsonRequest(
    'POST',
    `${hostOrigin(config.host, config.disableTls)}${config.path}?${query.toString()}`,
    { text: message.body },
  );
}

export const googlechatService = httpService<GooglechatConfig>({
  scheme: 'googlechat',
  aliases: ['hangouts'],
  shape: 'googlechat://chat.googleapis.com/v1/spaces/SPACE/messages?key=KEY&token=TOKEN',
  example: 'googlechat://chat.googleapis.com/v1/spaces/AAAA1234/messages?key=AIzaSyDd&token=Wb3qX9',
  parse: parseGooglechat,
  secrets: (config) => [config.key, config.token],
  requests: googlechatRequest,
});
