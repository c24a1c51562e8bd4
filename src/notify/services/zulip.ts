import { basicAuth, formRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import { titledBody, truncateBytes, truncateCharacters } from '../message.js';
import type { NotifyMessage } from '../message.js';
import { hostOrigin, httpService } from '../service.js';
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

// Zulip's limits: a topic of 60 characters, a message of 10000 bytes.
const topicLimit = 60;
const contentLimit = 10_000;

/**
 * The URL's topic wins, as in shoutrrr; without one the message title becomes the topic (cut to
 * Zulip's limit), otherwise the title leads the message text.
 */
export function zulipRequest(config: ZulipConfig, message: NotifyMessage): HttpRequest {
  const titleIsTopic = config.topic === '' && (message.title ?? '') !== '';
  const topic = truncateCharacters(titleIsTopic ? (message.title ?? '') : config.topic, topicLimit);
  const content = truncateBytes(titleIsTopic ? message.body : titledBody(message), contentLimit);
  return formRequest(
    `${hostOrigin(config.host, config.disableTls)}/api/v1/messages`,
    { type: 'stream', to: config.stream, content, ...(topic ? { topic } : {}) },
    { Authorization: basicAuth(config.botMail, config.botKey) },
  );
}

export const zulipService = httpService<ZulipConfig>({
  scheme: 'zulip',
  shape: 'zulip://BOT_MAIL:BOT_KEY@HOST[:PORT]/?stream=STREAM[&topic=TOPIC][&disabletls=yes]',
  example:
    'zulip://backup-bot%40example.zulipchat.com:correcthorsebatterystaple@example.zulipchat.com?stream=ops&topic=backups',
  parse: parseZulip,
  secrets: (config) => [config.botKey, basicAuth(config.botMail, config.botKey).slice(6)],
  requests: zulipRequest,
});
