import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { httpService } from '../service.js';
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
    'colorerror',
    'colorwarn',
    'colorinfo',
    'colordebug',
    'splitlines',
    'json',
  ]);
  const color = hexColor('color', query.string('color', '0x50D9ff'));
  // shoutrrr colours messages by level; ours carry none, so these are checked and otherwise unused.
  for (const name of ['colorError', 'colorWarn', 'colorInfo', 'colorDebug']) {
    const text = query.string(name);
    if (text !== '') hexColor(name, text);
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

function hexColor(name: string, text: string): number {
  const color = Number.parseInt(text.replace(/^0x|^#/i, ''), 16);
  if (!/^(?:0x|#)?[0-9a-f]{1,6}$/i.test(text) || !Number.isFinite(color)) {
    throw new ServiceUrlError('discord', `query parameter "${name}"`, 'expected a hex colour like 0x50D9ff');
  }
  return color;
}

// Discord's webhook limits: 2000 characters an embed text, 10 embeds and 6000 characters a message.
const embedLimit = 2000;
const embedsPerMessage = 10;
const charactersPerMessage = 6000;

/** Pieces of at most `limit` characters, cut at the last space or newline of a piece when there is one. */
function partition(text: string, limit: number): string[] {
  const pieces: string[] = [];
  let rest = Array.from(text);
  while (rest.length > limit) {
    const window = rest.slice(0, limit);
    const space = Math.max(window.lastIndexOf(' '), window.lastIndexOf('\n'));
    const cut = space > limit / 2 ? space : limit;
    pieces.push(rest.slice(0, cut).join(''));
    rest = rest.slice(cut === space ? cut + 1 : cut);
  }
  if (rest.length > 0) pieces.push(rest.join(''));
  return pieces;
}

/**
 * The texts of the embeds, grouped into as many webhook calls as Discord's limits need: one embed
 * per line (splitlines, the default) or the whole text in pieces; nothing is dropped.
 */
export function discordBatches(body: string, splitLines: boolean, titleLength: number): string[][] {
  const texts = (splitLines ? body.split('\n') : [body])
    .filter((t) => t.trim() !== '')
    .flatMap((t) => partition(t, embedLimit));
  const batches: string[][] = [];
  let batch: string[] = [];
  let size = titleLength;
  for (const text of texts) {
    const length = Array.from(text).length;
    if (batch.length === embedsPerMessage || (batch.length > 0 && size + length > charactersPerMessage)) {
      batches.push(batch);
      batch = [];
      size = titleLength;
    }
    batch.push(text);
    size += length;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

export function discordRequests(
  config: DiscordConfig,
  message: NotifyMessage,
  origin: string,
): HttpRequest[] {
  const url = `${origin}/api/webhooks/${config.webhookId}/${config.token}`;
  if (config.json)
    return [{ method: 'POST', url, headers: { 'Content-Type': 'application/json' }, body: message.body }];
  const title = message.title ?? config.title;
  return discordBatches(message.body, config.splitLines, Array.from(title).length).map((texts) =>
    jsonRequest('POST', url, {
      embeds: texts.map((text, index) => ({
        ...(index === 0 && title !== '' ? { title } : {}),
        description: text,
        color: config.color,
      })),
      ...(config.username ? { username: config.username } : {}),
      ...(config.avatar ? { avatar_url: config.avatar } : {}),
    }),
  );
}

export const discordService = httpService<DiscordConfig>({
  scheme: 'discord',
  shape:
    'discord://TOKEN@WEBHOOK_ID[/raw][?title=…&username=…&avatar=URL&color=0x50D9ff&colorError=…&splitlines=yes]',
  example: 'discord://W3dE2OZz4C13_4z_uHfDOoC7BqTW288s@693853386302554172',
  parse: parseDiscord,
  secrets: (config) => [config.token],
  origin: 'https://discord.com',
  requests: discordRequests,
});
