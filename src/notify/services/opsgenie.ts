import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { hostOrigin, httpService } from '../service.js';
import { QueryReader, ServiceUrlError, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface OpsgenieEntity {
  readonly type: string;
  readonly id?: string;
  readonly name?: string;
  readonly username?: string;
}

export interface OpsgenieConfig {
  readonly apiKey: string;
  readonly host: string;
  readonly disableTls: boolean;
  readonly alias: string;
  readonly description: string;
  readonly responders: readonly OpsgenieEntity[];
  readonly visibleTo: readonly OpsgenieEntity[];
  readonly actions: readonly string[];
  readonly tags: readonly string[];
  readonly details: Readonly<Record<string, string>>;
  readonly entity: string;
  readonly source: string;
  readonly priority: string;
  readonly user: string;
  readonly note: string;
  readonly title: string;
}

const idPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function fail(key: string, problem: string): never {
  throw new ServiceUrlError('opsgenie', `query parameter "${key}"`, problem);
}

function parseJson(key: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return fail(key, 'is not valid JSON');
  }
}

/** A list given either as JSON (as shoutrrr's docs show) or comma-separated. */
function stringList(key: string, text: string): string[] {
  if (text.trim().startsWith('[')) {
    const parsed = parseJson(key, text);
    if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string'))
      return fail(key, 'expected a list of strings');
    return parsed;
  }
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function entities(key: string, text: string): OpsgenieEntity[] {
  if (text.trim().startsWith('[')) {
    const parsed = parseJson(key, text);
    if (
      !Array.isArray(parsed) ||
      !parsed.every(
        (v) => typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string',
      )
    ) {
      return fail(key, 'expected a list of {"type": …, "id"|"name"|"username": …}');
    }
    return parsed as OpsgenieEntity[];
  }
  return stringList(key, text).map((item) => {
    const [type = '', identifier = '', ...rest] = item.split(':');
    if (rest.length > 0 || type === '' || identifier === '')
      return fail(key, 'expected TYPE:ID entries such as team:NOC');
    if (idPattern.test(identifier)) return { type, id: identifier };
    if (type === 'team') return { type, name: identifier };
    if (type === 'user') return { type, username: identifier };
    return fail(key, `entity type "${type}" needs an ID`);
  });
}

function details(text: string): Record<string, string> {
  if (text.trim().startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (
        typeof parsed === 'object' &&
        parsed !== null &&
        Object.values(parsed).every((v) => typeof v === 'string')
      ) {
        return parsed as Record<string, string>;
      }
    } catch {
      // reported below
    }
    return fail('details', 'expected a JSON object of strings or KEY:VALUE,…');
  }
  return Object.fromEntries(
    stringList('details', text).map((pair) => {
      const at = pair.indexOf(':');
      if (at <= 0) return fail('details', 'expected KEY:VALUE pairs separated by commas');
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

export function parseOpsgenie(parts: UrlParts): OpsgenieConfig {
  const apiKey = requirePart(
    parts,
    'API key',
    parts.segments[0] ?? '',
    'the API key as the path (opsgenie://api.opsgenie.com/KEY)',
  );
  const query = new QueryReader(parts, [
    'alias',
    'description',
    'responders',
    'visibleto',
    'actions',
    'tags',
    'details',
    'entity',
    'source',
    'priority',
    'user',
    'note',
    'title',
    'disabletls',
  ]);
  const priority = query.string('priority');
  if (priority !== '' && !/^P[1-5]$/.test(priority)) fail('priority', 'expected P1, P2, P3, P4 or P5');
  const config = {
    apiKey,
    host: parts.host === '' ? 'api.opsgenie.com' : parts.host,
    disableTls: query.bool('disabletls', false),
    alias: query.string('alias'),
    description: query.string('description'),
    responders: entities('responders', query.string('responders')),
    visibleTo: entities('visibleTo', query.string('visibleto')),
    actions: stringList('actions', query.string('actions')),
    tags: stringList('tags', query.string('tags')),
    details: details(query.string('details')),
    entity: query.string('entity'),
    source: query.string('source'),
    priority,
    user: query.string('user'),
    note: query.string('note'),
    title: query.string('title'),
  };
  query.done();
  return config;
}

export function opsgenieRequest(config: OpsgenieConfig, message: NotifyMessage): HttpRequest {
  let title = message.title ?? config.title;
  let description = message.body;
  // The alert message is limited to 130 characters; the full text goes into the description.
  if (title === '') {
    title = Array.from(message.body).slice(0, 130).join('');
    if (title === message.body) description = '';
  }
  if (config.description !== '')
    description = description === '' ? config.description : `${description}\n${config.description}`;
  const optional: Record<string, unknown> = {
    alias: config.alias,
    description,
    responders: config.responders,
    visibleTo: config.visibleTo,
    actions: config.actions,
    tags: config.tags,
    details: config.details,
    entity: config.entity,
    source: config.source,
    priority: config.priority,
    user: config.user,
    note: config.note,
  };
  const present = Object.entries(optional).filter(
    ([, v]) =>
      v !== '' &&
      !(Array.isArray(v) && v.length === 0) &&
      !(typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0),
  );
  return jsonRequest(
    'POST',
    `${hostOrigin(config.host, config.disableTls)}/v2/alerts`,
    { message: title, ...Object.fromEntries(present) },
    { Authorization: `GenieKey ${config.apiKey}` },
  );
}

export const opsgenieService = httpService<OpsgenieConfig>({
  scheme: 'opsgenie',
  shape:
    'opsgenie://api.opsgenie.com|api.eu.opsgenie.com/API_KEY[?priority=P1-P5&tags=a,b&responders=team:NAME&alias=…&entity=…]',
  example: 'opsgenie://api.opsgenie.com/eb243592-faa2-4ba2-a551-1afdf565c889?priority=P2&tags=backup',
  parse: parseOpsgenie,
  secrets: (config) => [config.apiKey],
  requests: opsgenieRequest,
});
