import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { apiOrigin } from '../service.js';
import type { NotifyService } from '../service.js';
import { QueryReader, ServiceUrlError } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

export interface TeamsConfig {
  readonly group: string;
  readonly tenant: string;
  readonly altId: string;
  readonly groupOwner: string;
  readonly host: string;
  readonly title: string;
  readonly color: string;
}

const legacyHost = 'outlook.office.com';
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const hash = /^[A-Za-z0-9]{32}$/;

export function parseTeams(parts: UrlParts): TeamsConfig {
  const [altId = '', groupOwner = ''] = parts.segments;
  const checks: [string, string, RegExp, string][] = [
    ['group', parts.user, uuid, 'a UUID before the @'],
    ['tenant', parts.hostname, uuid, 'a UUID after the @'],
    ['altId', altId, hash, 'the 32-character ID as the first path part'],
    ['groupOwner', groupOwner, uuid, 'a UUID as the second path part'],
  ];
  for (const [part, value, pattern, what] of checks) {
    if (!pattern.test(value))
      throw new ServiceUrlError('teams', part, `${value === '' ? 'missing' : 'malformed'}; expected ${what}`);
  }
  const query = new QueryReader(parts, ['host', 'title', 'color']);
  const config = {
    group: parts.user,
    tenant: parts.hostname,
    altId,
    groupOwner,
    host: query.string('host', legacyHost),
    title: query.string('title'),
    color: query.string('color'),
  };
  query.done();
  return config;
}

export function teamsRequest(config: TeamsConfig, message: NotifyMessage, origin: string): HttpRequest {
  const sections = message.body.split('\n').map((text) => ({ text, startGroup: false }));
  const title = message.title ?? config.title;
  const summary = title !== '' ? title : (sections[0]?.text.slice(0, 21) ?? '');
  const path = config.host === legacyHost ? 'webhook' : 'webhookb2';
  return jsonRequest(
    'POST',
    `${origin}/${path}/${config.group}@${config.tenant}/IncomingWebhook/${config.altId}/${config.groupOwner}`,
    {
      '@type': 'MessageCard',
      '@context': 'http://schema.org/extensions',
      markdown: true,
      ...(title ? { title } : {}),
      ...(summary ? { summary } : {}),
      sections,
      ...(config.color ? { themeColor: config.color } : {}),
    },
  );
}

export const teamsService: NotifyService<TeamsConfig> = {
  scheme: 'teams',
  shape: 'teams://GROUP@TENANT/ALT_ID/GROUP_OWNER?host=ORGANIZATION.webhook.office.com[&title=…&color=…]',
  example:
    'teams://11111111-4444-4444-8444-cccccccccccc@22222222-4444-4444-8444-cccccccccccc/33333333012222222222333333333344/44444444-4444-4444-8444-cccccccccccc?host=example.webhook.office.com',
  parse: parseTeams,
  secrets: (config) => [config.altId, config.groupOwner],
  async send(config, message, context) {
    await context.http(teamsRequest(config, message, apiOrigin(context, `https://${config.host}`)));
  },
};
