import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { hostOrigin, httpService } from '../service.js';
import { QueryReader, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface RocketchatConfig {
  readonly host: string;
  readonly tokenA: string;
  readonly tokenB: string;
  readonly userName: string;
  readonly channel: string;
  readonly disableTls: boolean;
}

export function parseRocketchat(parts: UrlParts): RocketchatConfig {
  requirePart(parts, 'host', parts.hostname, 'the Rocket.Chat server host');
  const [tokenA = '', tokenB = '', target = ''] = parts.segments;
  requirePart(parts, 'token', tokenA, 'the webhook token as TOKEN_A/TOKEN_B in the path');
  requirePart(parts, 'token', tokenB, 'the second half of the webhook token (TOKEN_A/TOKEN_B)');
  let channel = '';
  // An unescaped "#channel" lands in the fragment.
  if (parts.fragment !== '') channel = `#${parts.fragment}`;
  else if (target !== '') channel = target.startsWith('@') || target.startsWith('#') ? target : `#${target}`;
  // title is accepted as shoutrrr does, and unused as there: the webhook shows the body only
  const query = new QueryReader(parts, ['title', 'disabletls']);
  const config = {
    host: parts.host,
    tokenA,
    tokenB,
    userName: parts.user,
    channel,
    disableTls: query.bool('disabletls', false),
  };
  query.done();
  return config;
}

export function rocketchatRequest(config: RocketchatConfig, message: NotifyMessage): HttpRequest {
  return jsonRequest(
    'POST',
    `${hostOrigin(config.host, config.disableTls)}/hooks/${config.tokenA}/${config.tokenB}`,
    {
      text: message.body,
      ...(config.userName ? { username: config.userName } : {}),
      ...(config.channel ? { channel: config.channel } : {}),
    },
  );
}

export const rocketchatService = httpService<RocketchatConfig>({
  scheme: 'rocketchat',
  shape: 'rocketchat://[USERNAME@]HOST[:PORT]/TOKEN_A/TOKEN_B[/CHANNEL|/@USER][?disabletls=yes]',
  example:
    'rocketchat://backup@chat.example.com/8eGdRzc9r4YYNyvge/2XYQcX9NBwJBKfQnphpebPcnXZcPEi32Nt4NKJfrnbhsbRfX/backups',
  parse: parseRocketchat,
  secrets: (config) => [config.tokenA, config.tokenB],
  requests: rocketchatRequest,
});
