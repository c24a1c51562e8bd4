import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { apiOrigin } from '../service.js';
import type { NotifyService } from '../service.js';
import { QueryReader, ServiceUrlError, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface DiscordConfig {
  readonly webhookId: string;
  readonly token: string;
  readonly title: string;
  readonly username: string;
  readonly avatar: string;
  readonly color: number;
  readonly splitLines: boolean;
  readonly json: boolean;
}

export function parseDiscord(parts: UrlParts): DiscordConfig {
  const token = requirePart(parts, 'token', parts.user, 'the webhook token before the @');
  const webhookId = requirePart(parts, 'webhook ID', parts.hostname, 'the webhook ID after the @');
  if (parts.path !== '' && parts.path !== '/' && parts.path !== '/raw') {
    throw new ServiceUrlError('discord', 'path', 'only /raw is allowed');
  }
  const query = new QueryReader(parts, [
    'title',
    'username',
    'avatar',
    'avatarurl',
    'color',
    'splitlines',
    'json',
  ]);
  const colorText = query.string('color', '0x50D9ff');
  const color = Number.parseInt(colorText.replace(/^0x|^#/i, ''), 16);
  if (!Number.isFinite(color) || color < 0 || color > 0xffffff) {
    throw new ServiceUrlError('discord', 'query parameter "color"', 'expected a hex colour like 0x50D9ff');
  }
  const config = {
    webhookId,
    token,
    title: query.string('title'),
    username: query.string('username'),
    avatar: query.string(['avatar', 'avatarurl']),
    color,
    splitLines: query.bool('splitlines', true),
    json: query.bool('json', false) || parts.path === '/raw',
  };
  query.done();
  return config;
}

export function discordRequest(config: DiscordConfig, message: NotifyMessage, origin: string): HttpRequest {
  const url = `${origin}/api/webhooks/${config.webhookId}/${config.token}`;
  if (config.json)
    return { method: 'POST', url, headers: { 'Content-Type': 'application/json' }, body: message.body };
  const lines = config.splitLines ? message.body.split('\n').filter((l) => l.trim() !== '') : [message.body];
  // Discord accepts at most 10 embeds; the rest go into the last one.
  const texts = lines.length > 10 ? [...lines.slice(0, 9), lines.slice(9).join('\n')] : lines;
  const title = message.title ?? config.title;
  const embeds = texts.map((text, index) => ({
    ...(index === 0 && title !== '' ? { title } : {}),
    description: text,
    color: config.color,
  }));
  return jsonRequest('POST', url, {
    embeds,
    ...(config.username ? { username: config.username } : {}),
    ...(config.avatar ? { avatar_url: config.avatar } : {}),
  });
}

export const discordService: NotifyService<DiscordConfig> = {
  scheme: 'discord',
  shape: 'discord://TOKEN@WEBHOOK_ID[/raw][?title=…&username=…&avatar=URL&color=0x50D9ff&splitlines=yes]',
  example: 'discord://W3dE2OZz4C13_4z_uHfDOoC7BqTW288s@693853386302554172',
  parse: parseDiscord,
  secrets: (config) => [config.token],
  async send(config, message, context) {
    await context.http(discordRequest(config, message, apiOrigin(context, 'https://discord.com')));
  },
};
