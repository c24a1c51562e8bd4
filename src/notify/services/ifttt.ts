import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { httpService } from '../service.js';
import { QueryReader, ServiceUrlError, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface IftttConfig {
  readonly webhookKey: string;
  readonly events: readonly string[];
  readonly values: readonly [string, string, string];
  /** which value (1-3) carries the message */
  readonly messageValue: number;
  /** which value (1-3) carries the title; 0 for none */
  readonly titleValue: number;
  readonly title: string;
}

export function parseIfttt(parts: UrlParts): IftttConfig {
  const webhookKey = requirePart(parts, 'webhook key', parts.hostname, 'the Maker webhook key as the host');
  const query = new QueryReader(parts, [
    'events',
    'value1',
    'value2',
    'value3',
    'messagevalue',
    'titlevalue',
    'title',
  ]);
  const events = query.list('events');
  if (events.length === 0)
    throw new ServiceUrlError('ifttt', 'query parameter "events"', 'missing; give at least one event name');
  const config = {
    webhookKey,
    events,
    values: [query.string('value1'), query.string('value2'), query.string('value3')] as const,
    messageValue: query.int('messagevalue', 2, 1, 3),
    titleValue: query.int('titlevalue', 0, 0, 3),
    title: query.string('title'),
  };
  query.done();
  if (config.titleValue === config.messageValue) {
    throw new ServiceUrlError(
      'ifttt',
      'query parameter "titlevalue"',
      'cannot be the same value as messagevalue',
    );
  }
  return config;
}

export function iftttRequests(config: IftttConfig, message: NotifyMessage, origin: string): HttpRequest[] {
  const values = [...config.values];
  values[config.messageValue - 1] = message.body;
  if (config.titleValue > 0) values[config.titleValue - 1] = message.title ?? config.title;
  const payload = { value1: values[0], value2: values[1], value3: values[2] };
  return config.events.map((event) =>
    jsonRequest(
      'POST',
      `${origin}/trigger/${encodeURIComponent(event)}/with/key/${config.webhookKey}`,
      payload,
    ),
  );
}

export const iftttService = httpService<IftttConfig>({
  scheme: 'ifttt',
  shape:
    'ifttt://WEBHOOK_KEY/?events=EVENT[,EVENT…][&value1=…&value2=…&value3=…&messagevalue=2&titlevalue=0]',
  example: 'ifttt://dJ5Hg3nN0ybWq7R4cA/?events=backup_done&titlevalue=1',
  parse: parseIfttt,
  secrets: (config) => [config.webhookKey],
  origin: 'https://maker.ifttt.com',
  requests: iftttRequests,
});
