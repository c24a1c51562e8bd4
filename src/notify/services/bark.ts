import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { httpService } from '../service.js';
import { QueryReader, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface BarkConfig {
  readonly deviceKey: string;
  readonly host: string;
  readonly path: string;
  readonly scheme: 'http' | 'https';
  readonly title: string;
  readonly sound: string;
  readonly badge: number;
  readonly icon: string;
  readonly group: string;
  readonly url: string;
  readonly category: string;
  readonly copy: string;
}

export function parseBark(parts: UrlParts): BarkConfig {
  // shoutrrr reads the key from the password; its overview shows it as the user, so both work.
  const deviceKey = requirePart(
    parts,
    'device key',
    parts.password || parts.user,
    'the device key as the password (bark://:KEY@host)',
  );
  requirePart(parts, 'host', parts.hostname, 'the Bark server host');
  const query = new QueryReader(parts, [
    'title',
    'scheme',
    'sound',
    'badge',
    'icon',
    'group',
    'url',
    'category',
    'copy',
  ]);
  const config = {
    deviceKey,
    host: parts.host,
    path: parts.path.replace(/\/+$/, ''),
    scheme: query.oneOf('scheme', ['http', 'https'] as const, 'https'),
    title: query.string('title'),
    sound: query.string('sound'),
    badge: query.int('badge', 0, 0, 999_999),
    icon: query.string('icon'),
    group: query.string('group'),
    url: query.string('url'),
    category: query.string('category'),
    copy: query.string('copy'),
  };
  query.done();
  return config;
}

export function barkRequest(config: BarkConfig, message: NotifyMessage): HttpRequest {
  const optional = {
    sound: config.sound,
    icon: config.icon,
    group: config.group,
    url: config.url,
    category: config.category,
    copy: config.copy,
  };
  return jsonRequest('POST', `${config.scheme}://${config.host}${config.path}/push`, {
    body: message.body,
    device_key: config.deviceKey,
    title: message.title ?? config.title,
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== '')),
    badge: config.badge,
  });
}

export const barkService = httpService<BarkConfig>({
  scheme: 'bark',
  shape: 'bark://:DEVICE_KEY@HOST[:PORT][/PATH][?title=…&sound=…&group=…&badge=N&scheme=https]',
  example: 'bark://:NrbQzhvGgvGrt8hzYUrGVo@api.day.app/?sound=alarm&group=backups',
  parse: parseBark,
  secrets: (config) => [config.deviceKey],
  requests: barkRequest,
});
