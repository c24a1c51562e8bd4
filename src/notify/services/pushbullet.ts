import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { httpService } from '../service.js';
import { QueryReader, ServiceUrlError } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface PushbulletConfig {
  readonly token: string;
  /** device idens, #channel tags, e-mail addresses; empty means all of the user's devices */
  readonly targets: readonly string[];
  readonly title: string;
}

export function parsePushbullet(parts: UrlParts): PushbulletConfig {
  if (parts.hostname.length !== 34) {
    throw new ServiceUrlError(
      'pushbullet',
      'token',
      `${parts.hostname === '' ? 'missing' : 'malformed'}; expected the 34-character access token as the host`,
    );
  }
  const targets = [...parts.segments];
  // An unescaped "#channel" lands in the fragment, possibly followed by more targets.
  if (parts.fragment !== '') {
    const [channel = '', ...rest] = parts.fragment.split('/');
    targets.push(`#${channel}`, ...rest.filter((r) => r !== ''));
  }
  const query = new QueryReader(parts, ['title']);
  const config = { token: parts.hostname, targets, title: query.string('title', 'unifi-backup') };
  query.done();
  return config;
}

function targetField(target: string): Record<string, string> {
  if (target === '') return {};
  if (/.*@.*\..*/.test(target)) return { email: target };
  if (target.startsWith('#')) return { channel_tag: target.slice(1) };
  return { device_iden: target };
}

export function pushbulletRequests(
  config: PushbulletConfig,
  message: NotifyMessage,
  origin: string,
): HttpRequest[] {
  const targets = config.targets.length === 0 ? [''] : config.targets;
  return targets.map((target) =>
    jsonRequest(
      'POST',
      `${origin}/v2/pushes`,
      { type: 'note', title: message.title ?? config.title, body: message.body, ...targetField(target) },
      { 'Access-Token': config.token },
    ),
  );
}

export const pushbulletService = httpService<PushbulletConfig>({
  scheme: 'pushbullet',
  shape: 'pushbullet://ACCESS_TOKEN[/DEVICE][/#CHANNEL][/EMAIL][?title=…]',
  example: 'pushbullet://o.Gcyf9hPx7ySzbrZKmHv2D4N0PaQ3mW1t/ujpah72o0sjAoRtnM0jc',
  parse: parsePushbullet,
  secrets: (config) => [config.token],
  origin: 'https://api.pushbullet.com',
  requests: pushbulletRequests,
});
