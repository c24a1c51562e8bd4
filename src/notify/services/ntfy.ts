import { basicAuth } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { httpService } from '../service.js';
import { QueryReader, ServiceUrlError } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface NtfyConfig {
  readonly host: string;
  readonly topic: string;
  readonly user: string;
  readonly password: string;
  readonly scheme: 'http' | 'https';
  readonly title: string;
  /** 1 (min) … 5 (max); 3 is ntfy's default and is not sent */
  readonly priority: number;
  readonly tags: readonly string[];
  readonly actions: readonly string[];
  readonly click: string;
  readonly attach: string;
  readonly filename: string;
  readonly delay: string;
  readonly email: string;
  readonly icon: string;
  readonly cache: boolean;
  readonly firebase: boolean;
}

const priorities: Record<string, number> = { min: 1, low: 2, default: 3, high: 4, max: 5, urgent: 5 };

export function parseNtfy(parts: UrlParts): NtfyConfig {
  const topic = parts.path.replace(/^\//, '');
  if (topic === '')
    throw new ServiceUrlError('ntfy', 'topic', 'missing; give the topic as the path (ntfy://ntfy.sh/TOPIC)');
  const query = new QueryReader(parts, [
    'title',
    'scheme',
    'tags',
    'priority',
    'actions',
    'click',
    'attach',
    'filename',
    'delay',
    'at',
    'in',
    'email',
    'icon',
    'cache',
    'firebase',
  ]);
  const priorityText = query.string('priority', '3').toLowerCase();
  const priority = priorities[priorityText] ?? Number(priorityText);
  if (!Number.isInteger(priority) || priority < 1 || priority > 5) {
    throw new ServiceUrlError(
      'ntfy',
      'query parameter "priority"',
      'expected 1-5 or min, low, default, high, max',
    );
  }
  const config = {
    host: parts.host === '' ? 'ntfy.sh' : parts.host,
    topic,
    user: parts.user,
    password: parts.password,
    scheme: query.oneOf('scheme', ['http', 'https'] as const, 'https'),
    title: query.string('title'),
    priority,
    tags: query.list('tags'),
    actions: query.list('actions', ';'),
    click: query.string('click'),
    attach: query.string('attach'),
    filename: query.string('filename'),
    delay: query.string(['delay', 'at', 'in']),
    email: query.string('email'),
    icon: query.string('icon'),
    cache: query.bool('cache', true),
    firebase: query.bool('firebase', true),
  };
  query.done();
  return config;
}

export function ntfyRequest(config: NtfyConfig, message: NotifyMessage): HttpRequest {
  const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
  const set = (name: string, value: string): void => {
    if (value !== '') headers[name] = value;
  };
  set('Title', message.title ?? config.title);
  if (config.priority !== 3) set('Priority', String(config.priority));
  set('Tags', config.tags.join(','));
  set('Delay', config.delay);
  set('Actions', config.actions.join(';'));
  set('Click', config.click);
  set('Attach', config.attach);
  set('X-Icon', config.icon);
  set('Filename', config.filename);
  set('Email', config.email);
  if (!config.cache) headers['Cache'] = 'no';
  if (!config.firebase) headers['Firebase'] = 'no';
  // A token alone goes as Basic ":TOKEN", as shoutrrr sends it; ntfy accepts it as an access token.
  if (config.password !== '') headers['Authorization'] = basicAuth(config.user, config.password);
  return {
    method: 'POST',
    url: `${config.scheme}://${config.host}/${config.topic}`,
    headers,
    body: message.body,
  };
}

export const ntfyService = httpService<NtfyConfig>({
  scheme: 'ntfy',
  shape: 'ntfy://[USER:PASSWORD@|:TOKEN@]HOST/TOPIC[?priority=1-5&tags=a,b&title=…&click=URL&scheme=https]',
  example: 'ntfy://ntfy.sh/my-backups?priority=high&tags=floppy_disk',
  parse: parseNtfy,
  secrets: (config) =>
    config.password === '' ? [] : [config.password, basicAuth(config.user, config.password).slice(6)],
  requests: ntfyRequest,
});
