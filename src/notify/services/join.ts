import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { httpService } from '../service.js';
import { QueryReader, ServiceUrlError, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface JoinConfig {
  readonly apiKey: string;
  readonly devices: readonly string[];
  readonly title: string;
  readonly icon: string;
}

export function parseJoin(parts: UrlParts): JoinConfig {
  const apiKey = requirePart(
    parts,
    'API key',
    parts.password,
    'the API key as the password (join://shoutrrr:KEY@join)',
  );
  const query = new QueryReader(parts, ['devices', 'title', 'icon']);
  const devices = query.list('devices');
  if (devices.length === 0)
    throw new ServiceUrlError('join', 'query parameter "devices"', 'missing; give at least one device ID');
  const config = { apiKey, devices, title: query.string('title'), icon: query.string('icon') };
  query.done();
  return config;
}

/** Join's API takes everything in the query string of an empty POST. */
export function joinRequest(config: JoinConfig, message: NotifyMessage, origin: string): HttpRequest {
  const title = message.title ?? config.title;
  const query = new URLSearchParams({
    deviceIds: config.devices.join(','),
    apikey: config.apiKey,
    text: message.body,
    ...(title ? { title } : {}),
    ...(config.icon ? { icon: config.icon } : {}),
  });
  return {
    method: 'POST',
    url: `${origin}/_ah/api/messaging/v1/sendPush?${query.toString()}`,
    headers: { 'Content-Type': 'text/plain' },
  };
}

export const joinService = httpService<JoinConfig>({
  scheme: 'join',
  shape: 'join://shoutrrr:API_KEY@join/?devices=DEVICE[,DEVICE…][&title=…&icon=URL]',
  example: 'join://shoutrrr:0e5b6a9c8d7f4e3b2a1c@join/?devices=a1b2c3d4e5',
  parse: parseJoin,
  secrets: (config) => [config.apiKey],
  origin: 'https://joinjoaomgcd.appspot.com',
  requests: joinRequest,
});
