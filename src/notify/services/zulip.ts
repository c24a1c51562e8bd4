import { basicAuth, formRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { hostOrigin } from '../service.js';
import type { NotifyService } from '../service.js';
import { QueryReader, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface ZulipConfig {
  readonly botMail: string;
  readonly botKey: string;
  readonly host: string;
  readonly stream: string;
  readonly topic: string;
  readonly disableTls: boolean;
}

export function parseZulip(parts: UrlParts): ZulipConfig {
  const botMail = requirePart(
    parts,
    'bot mail',
    parts.user,
    'the bot e-mail (with @ written as %40) before the :',
  );
  const botKey = requirePart(parts, 'API key', parts.password, 'the bot API key after the :');
  requirePart(parts, 'host', parts.hostname, 'the Zulip server host');
  const query = new QueryReader(parts, ['stream', 'topic', 'title', 'disabletls']);
  const config = {
    botMail,
    botKey,
    host: parts.host,
    stream: query.required('stream', 'the stream to post to'),
    topic: query.string(['topic', 'title']),
    disableTls: query.bool('disabletls', false),
  };
  query.done();
  return config;
}

export function zulipRequest(config: ZulipConfig, message: NotifyMessage): HttpRequest {
  const topic = message.title ?? config.topic;
  if (Array.from(topic).length > 60)
    throw new Error(`zulip topic is longer than 60 characters (${Array.from(topic).length})`);
  if (Buffer.byteLength(message.body) > 10_000) throw new Error('zulip message is longer than 10000 bytes');
  return formRequest(
    `${hostOrigin(config.host, config.disableTls)}/api/v1/messages`,
    { type: 'stream', to: config.stream, content: message.body, ...(topic ? { topic } : {}) },
    { Authorization: basicAuth(config.botMail, config.botKey) },
  );
}

export const zulipService: NotifyService<ZulipConfig> = {
  scheme: 'zulip',
  shape: 'zulip://BOT_MAIL:BOT_KEY@HOST[:PORT]/?stream=STREAM[&topic=TOPIC][&disabletls=yes]',
  example:
    'zulip://backup-bot%40example.zulipchat.com:correcthorsebatterystaple@example.zulipchat.com?stream=ops&topic=backups',
  parse: parseZulip,
  secrets: (config) => [config.botKey, basicAuth(config.botMail, config.botKey).slice(6)],
  async send(config, message, context) {
    await context.http(zulipRequest(config, message));
  },
};
