import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { hostOrigin, httpService } from '../service.js';
import { QueryReader, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface MattermostConfig {
  readonly host: string;
  readonly token: string;
  readonly userName: string;
  readonly channel: string;
  readonly icon: string;
  readonly disableTls: boolean;
}

export function parseMattermost(parts: UrlParts): MattermostConfig {
  requirePart(parts, 'host', parts.hostname, 'the Mattermost server host');
  const [token = '', channel = ''] = parts.segments;
  requirePart(parts, 'token', token, 'the webhook token as the first path part');
  const query = new QueryReader(parts, [
    'icon',
    'icon_emoji',
    'icon_url',
    // accepted as shoutrrr does, and unused as there: the webhook shows the body only
    'title',
    'disabletls',
    'username',
    'channel',
  ]);
  const config = {
    host: parts.host,
    token,
    userName: query.string('username', parts.user),
    channel: query.string('channel', channel),
    icon: query.string(['icon', 'icon_emoji', 'icon_url']),
    disableTls: query.bool('disabletls', false),
  };
  query.done();
  return config;
}

export function mattermostRequest(config: MattermostConfig, message: NotifyMessage): HttpRequest {
  const icon = config.icon;
  return jsonRequest('POST', `${hostOrigin(config.host, config.disableTls)}/hooks/${config.token}`, {
    text: message.body,
    ...(config.userName ? { username: config.userName } : {}),
    ...(config.channel ? { channel: config.channel } : {}),
    ...(icon === '' ? {} : /^https?:\/\//.test(icon) ? { icon_url: icon } : { icon_emoji: icon }),
  });
}

export const mattermostService = httpService<MattermostConfig>({
  scheme: 'mattermost',
  shape: 'mattermost://[USERNAME@]HOST[:PORT]/TOKEN[/CHANNEL][?icon=…&disabletls=yes]',
  example: 'mattermost://backup@chat.example.com/bywsw8zt5jgpte3nm65qjiru6h/backups',
  parse: parseMattermost,
  secrets: (config) => [config.token],
  requests: mattermostRequest,
});
