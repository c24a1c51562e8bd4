import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { httpService } from '../service.js';
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

/** The webhook's four IDs, from whichever of shoutrrr's three URL forms was given. */
function webhookParts(parts: UrlParts): [string, string, string, string] {
  if (parts.scheme === 'teams+https') {
    // The webhook URL as Teams shows it: https://ORG.webhook.office.com/webhookb2/GROUP@TENANT/IncomingWebhook/ALT_ID/OWNER
    const match = /^\/webhook(?:b2)?\/([^/@]+)@([^/]+)\/[^/]+\/([^/]+)\/([^/]+)\/?$/.exec(parts.path);
    if (match === null)
      throw new ServiceUrlError(
        'teams',
        'path',
        'expected /webhookb2/GROUP@TENANT/IncomingWebhook/ALT_ID/GROUP_OWNER as in the webhook URL',
      );
    return [match[1] ?? '', match[2] ?? '', match[3] ?? '', match[4] ?? ''];
  }
  if (parts.hasPassword) {
    // Legacy form: teams://GROUP@TENANT:ALT_ID@GROUP_OWNER
    const [group = '', tenant = '', ...rest] = parts.user.split('@');
    if (rest.length > 0) throw new ServiceUrlError('teams', 'user', 'expected GROUP@TENANT before the :');
    return [group, tenant, parts.password, parts.hostname];
  }
  const [altId = '', groupOwner = ''] = parts.segments;
  return [parts.user, parts.hostname, altId, groupOwner];
}

export function parseTeams(parts: UrlParts): TeamsConfig {
  const [group, tenant, altId, groupOwner] = webhookParts(parts);
  const checks: [string, string, RegExp, string][] = [
    ['group', group, uuid, 'a UUID (the first ID of the webhook URL)'],
    ['tenant', tenant, uuid, 'a UUID (the ID after the @ in the webhook URL)'],
    ['altId', altId, hash, 'the 32-character ID after IncomingWebhook/'],
    ['groupOwner', groupOwner, uuid, 'a UUID (the last ID of the webhook URL)'],
  ];
  for (const [part, value, pattern, what] of checks) {
    if (!pattern.test(value))
      throw new ServiceUrlError('teams', part, `${value === '' ? 'missing' : 'malformed'}; expected ${what}`);
  }
  const query = new QueryReader(parts, ['host', 'title', 'color']);
  const config = {
    group,
    tenant,
    altId,
    groupOwner,
    host: query.string('host', parts.scheme === 'teams+https' ? parts.host : legacyHost),
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

export const teamsService = httpService<TeamsConfig>({
  scheme: 'teams',
  aliases: ['teams+https'],
  shape:
    'teams://GROUP@TENANT/ALT_ID/GROUP_OWNER?host=ORGANIZATION.webhook.office.com[&title=…&color=…] | teams+https://WEBHOOK_URL | teams://GROUP@TENANT:ALT_ID@GROUP_OWNER (legacy)',
  example:
    'teams://11111111-4444-4444-8444-cccccccccccc@22222222-4444-4444-8444-cccccccccccc/33333333012222222222333333333344/44444444-4444-4444-8444-cccccccccccc?host=example.webhook.office.com',
  parse: parseTeams,
  secrets: (config) => [config.altId, config.groupOwner],
  origin: (config) => `https://${config.host}`,
  requests: teamsRequest,
});
