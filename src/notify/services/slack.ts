import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { apiOrigin } from '../service.js';
import type { NotifyService } from '../service.js';
import { QueryReader, ServiceUrlError } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface SlackConfig {
  /** hook, xoxb or xoxp */
  readonly tokenType: string;
  readonly tokenParts: readonly [string, string, string];
  /** a channel ID for the bot API, or "webhook" */
  readonly channel: string;
  readonly botName: string;
  readonly icon: string;
  readonly color: string;
  readonly title: string;
  readonly threadTs: string;
}

const tokenPattern = /^(?:(xox.|hook)[-:]|:?)([A-Z0-9]{9,})([-/,])([A-Z0-9]{9,})([-/,])([A-Za-z0-9]{24,})$/;

export function parseSlack(parts: UrlParts): SlackConfig {
  let token: string;
  let channel: string;
  let botName = '';
  if (parts.segments.length > 0) {
    // Legacy webhook form: slack://[botname@]AAAAAAAAA/BBBBBBBBB/CCCCCCCCCCCCCCCCCCCCCCCC
    token = [parts.hostname, ...parts.segments].join('/');
    channel = 'webhook';
    botName = parts.user;
  } else {
    token = parts.hasPassword ? `${parts.user}:${parts.password}` : parts.user;
    channel = parts.hostname;
  }
  const match = tokenPattern.exec(token);
  if (match === null) {
    throw new ServiceUrlError(
      'slack',
      'token',
      'expected hook:AAAA-BBBB-CCCC (webhook) or xoxb:AAAA-BBBB-CCCC (bot API) before the @',
    );
  }
  if (match[3] !== match[5])
    throw new ServiceUrlError('slack', 'token', 'its three parts use different separators');
  if (channel === '')
    throw new ServiceUrlError('slack', 'channel', 'missing; give a channel ID or "webhook" after the @');
  const query = new QueryReader(parts, [
    'botname',
    'username',
    'icon',
    'icon_emoji',
    'icon_url',
    'color',
    'title',
    'thread_ts',
  ]);
  const config: SlackConfig = {
    tokenType: match[1] ?? 'hook',
    tokenParts: [match[2] ?? '', match[4] ?? '', match[6] ?? ''],
    channel,
    botName: query.string(['botname', 'username'], botName),
    icon: query.string(['icon', 'icon_emoji', 'icon_url']),
    color: query.string('color'),
    title: query.string('title'),
    threadTs: query.string('thread_ts'),
  };
  query.done();
  if (config.tokenType !== 'hook' && config.channel === 'webhook') {
    throw new ServiceUrlError(
      'slack',
      'channel',
      'a bot token needs a channel ID after the @, not "webhook"',
    );
  }
  return config;
}

export function slackPayload(config: SlackConfig, message: NotifyMessage): Record<string, unknown> {
  const lines = message.body.split('\n');
  // Slack shows at most 100 attachments; the rest join the last one.
  const texts = lines.length > 100 ? [...lines.slice(0, 99), lines.slice(99).join('\n')] : lines;
  while (texts.length > 1 && texts.at(-1) === '') texts.pop();
  const icon = config.icon;
  return {
    text: message.title ?? config.title,
    ...(config.botName ? { username: config.botName } : {}),
    attachments: texts.map((text) => ({ text, ...(config.color ? { color: config.color } : {}) })),
    ...(config.threadTs ? { thread_ts: config.threadTs } : {}),
    ...(config.channel !== 'webhook' ? { channel: config.channel } : {}),
    ...(icon === '' ? {} : /^https?:\/\//.test(icon) ? { icon_url: icon } : { icon_emoji: icon }),
  };
}

export function slackRequest(
  config: SlackConfig,
  message: NotifyMessage,
  base: string | undefined,
): HttpRequest {
  const payload = slackPayload(config, message);
  if (config.tokenType === 'hook') {
    return jsonRequest(
      'POST',
      `${base ?? 'https://hooks.slack.com'}/services/${config.tokenParts.join('/')}`,
      payload,
    );
  }
  return jsonRequest('POST', `${base ?? 'https://slack.com'}/api/chat.postMessage`, payload, {
    Authorization: `Bearer ${config.tokenType}-${config.tokenParts.join('-')}`,
  });
}

export const slackService: NotifyService<SlackConfig> = {
  scheme: 'slack',
  shape:
    'slack://hook:WEBHOOK-TOKEN@webhook | slack://xoxb:BOT-TOKEN@CHANNEL [?color=…&title=…&botname=…&icon=…&thread_ts=…]',
  example: 'slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook?color=good',
  parse: parseSlack,
  secrets: (config) => [...config.tokenParts, config.tokenParts.join('-'), config.tokenParts.join('/')],
  async send(config, message, context) {
    const base = context.apiBase === undefined ? undefined : apiOrigin(context, '');
    const response = await context.http(slackRequest(config, message, base));
    if (config.tokenType !== 'hook') {
      let ok = false;
      let error = 'unknown error';
      try {
        const parsed = JSON.parse(response.body) as { ok?: boolean; error?: string };
        ok = parsed.ok === true;
        error = parsed.error ?? error;
      } catch {
        // A non-JSON answer is a failure reported below.
      }
      if (!ok) throw new Error(`slack API answered: ${error}`);
    } else if (response.body.trim() !== '' && response.body.trim() !== 'ok') {
      throw new Error(`slack webhook answered: ${response.body.trim().slice(0, 200)}`);
    }
  },
};
