import type { NotifyService, ServiceTarget } from './service.js';
import { ServiceUrlError, splitUrl } from './service-url.js';
import { barkService } from './services/bark.js';
import { discordService } from './services/discord.js';
import { genericService } from './services/generic.js';
import { googlechatService } from './services/googlechat.js';
import { gotifyService } from './services/gotify.js';
import { iftttService } from './services/ifttt.js';
import { joinService } from './services/join.js';
import { loggerService } from './services/logger.js';
import { matrixService } from './services/matrix.js';
import { mattermostService } from './services/mattermost.js';
import { ntfyService } from './services/ntfy.js';
import { opsgenieService } from './services/opsgenie.js';
import { pushbulletService } from './services/pushbullet.js';
import { pushoverService } from './services/pushover.js';
import { rocketchatService } from './services/rocketchat.js';
import { slackService } from './services/slack.js';
import { smtpService } from './services/smtp.js';
import { teamsService } from './services/teams.js';
import { telegramService } from './services/telegram.js';
import { zulipService } from './services/zulip.js';

export interface ServiceDescription {
  readonly scheme: string;
  readonly aliases: readonly string[];
  readonly shape: string;
  readonly example: string;
}

// The erased element type lets one list hold services of different config types.
type AnyService = NotifyService<never>;

const services: readonly AnyService[] = [
  barkService,
  discordService,
  genericService,
  googlechatService,
  gotifyService,
  iftttService,
  joinService,
  loggerService,
  matrixService,
  mattermostService,
  ntfyService,
  opsgenieService,
  pushbulletService,
  pushoverService,
  rocketchatService,
  slackService,
  smtpService,
  teamsService,
  telegramService,
  zulipService,
] as unknown as readonly AnyService[];

export function listServices(): ServiceDescription[] {
  return services.map((s) => ({
    scheme: s.scheme,
    aliases: s.aliases ?? [],
    shape: s.shape,
    example: s.example,
  }));
}

function serviceFor(scheme: string): AnyService | undefined {
  return services.find((s) => s.scheme === scheme || (s.aliases ?? []).includes(scheme));
}

/** Parses a shoutrrr-style URL into a target ready to send; a bad URL throws ServiceUrlError. */
export function parseServiceUrl(raw: string): ServiceTarget {
  const parts = splitUrl(raw);
  const service = serviceFor(parts.scheme) as NotifyService<unknown> | undefined;
  if (service === undefined) {
    throw new ServiceUrlError(
      parts.scheme,
      'scheme',
      `not a supported service; supported: ${services.map((s) => s.scheme).join(', ')}`,
    );
  }
  const config = service.parse(parts);
  // A password also travels as Basic credentials (user:password in base64), which an echoing
  // server may print back.
  const basic =
    parts.password === '' ? [] : [Buffer.from(`${parts.user}:${parts.password}`).toString('base64')];
  const secrets = [
    ...service.secrets(config),
    parts.password,
    ...basic,
    ...(parts.user.length >= 16 ? [parts.user] : []),
  ].filter((s) => s !== '');
  return {
    scheme: service.scheme,
    secrets,
    send: (message, context) => service.send(config, message, context),
  };
}
