import { formRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import { truncateCharacters } from '../message.js';
import type { NotifyMessage } from '../message.js';
import { httpService } from '../service.js';
import { QueryReader, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface PushoverConfig {
  readonly token: string;
  readonly user: string;
  readonly devices: readonly string[];
  readonly priority: number;
  readonly title: string;
}

export function parsePushover(parts: UrlParts): PushoverConfig {
  const token = requirePart(
    parts,
    'API token',
    parts.password,
    'the application API token as the password (shoutrrr:TOKEN@…)',
  );
  const user = requirePart(parts, 'user key', parts.hostname, 'the user key after the @');
  const query = new QueryReader(parts, ['devices', 'priority', 'title']);
  const config = {
    token,
    user,
    devices: query.list('devices'),
    // Priority 2 (emergency) needs retry/expire parameters shoutrrr never sends; like shoutrrr, the
    // URL is accepted and the message goes out without a priority (Pushover's normal one).
    priority: query.int('priority', 0, -2, 2),
    title: query.string('title'),
  };
  query.done();
  return config;
}

// Pushover's limits: a message of 1024 characters, a title of 250.
const messageLimit = 1024;
const titleLimit = 250;

export function pushoverRequest(config: PushoverConfig, message: NotifyMessage, origin: string): HttpRequest {
  const title = truncateCharacters(message.title ?? config.title, titleLimit);
  return formRequest(`${origin}/1/messages.json`, {
    token: config.token,
    user: config.user,
    message: truncateCharacters(message.body, messageLimit),
    ...(config.devices.length > 0 ? { device: config.devices.join(',') } : {}),
    ...(title ? { title } : {}),
    ...(config.priority <= 1 ? { priority: String(config.priority) } : {}),
  });
}

export const pushoverService = httpService<PushoverConfig>({
  scheme: 'pushover',
  shape: 'pushover://shoutrrr:API_TOKEN@USER_KEY/[?devices=D1,D2&priority=-2..2&title=…]',
  example: 'pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/?devices=phone',
  parse: parsePushover,
  secrets: (config) => [config.token, config.user],
  origin: 'https://api.pushover.net',
  requests: pushoverRequest,
});
