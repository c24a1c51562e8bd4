import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { NotifyMessage } from '../message.js';
import type { NotifyService, SendContext } from '../service.js';
import { QueryReader, ServiceUrlError, requirePart } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

const authTypes = ['None', 'Plain', 'CRAMMD5', 'Unknown', 'OAuth2'] as const;
const encryptions = ['None', 'ExplicitTLS', 'ImplicitTLS', 'Auto'] as const;

export interface SmtpConfig {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly fromAddress: string;
  readonly fromName: string;
  readonly toAddresses: readonly string[];
  readonly subject: string;
  /** Unknown (the default) authenticates when a username is given and lets the server pick the method */
  readonly auth: (typeof authTypes)[number];
  readonly encryption: (typeof encryptions)[number];
  readonly useStartTls: boolean;
  readonly useHtml: boolean;
  readonly clientHost: string;
}

const address = /^[^\s@]+@[^\s@]+$/;

// A query string decodes "+" to a space, and an address holds no space: a space was a raw "+"
// (to=ops+kvm@example.com).
const plus = (text: string): string => text.replaceAll(' ', '+');

function parseAddresses(query: QueryReader): { fromAddress: string; toAddresses: string[] } {
  const fromAddress = plus(
    query.required(['from', 'fromaddress'], 'the sender address (from=backup@example.com)'),
  );
  if (!address.test(fromAddress))
    throw new ServiceUrlError('smtp', 'query parameter "from"', 'is not an e-mail address');
  const toAddresses = query.list(['to', 'toaddresses']).map(plus);
  if (toAddresses.length === 0)
    throw new ServiceUrlError(
      'smtp',
      'query parameter "to"',
      'missing; give one or more recipients separated by commas',
    );
  const badTo = toAddresses.findIndex((a) => !address.test(a));
  if (badTo >= 0)
    throw new ServiceUrlError(
      'smtp',
      'query parameter "to"',
      `recipient ${badTo + 1} is not an e-mail address`,
    );
  return { fromAddress, toAddresses };
}

export function parseSmtp(parts: UrlParts): SmtpConfig {
  const host = requirePart(parts, 'host', parts.hostname, 'the SMTP server host');
  const query = new QueryReader(parts, [
    'fromaddress',
    'from',
    'fromname',
    'toaddresses',
    'to',
    'subject',
    'title',
    'auth',
    'encryption',
    'usestarttls',
    'starttls',
    'usehtml',
    'clienthost',
  ]);
  const { fromAddress, toAddresses } = parseAddresses(query);
  const config: SmtpConfig = {
    host,
    port: parts.port ?? 25,
    username: parts.user,
    password: parts.password,
    fromAddress,
    fromName: query.string('fromname'),
    toAddresses,
    subject: query.string(['subject', 'title'], 'unifi-backup notification'),
    auth: query.oneOf('auth', authTypes, 'Unknown'),
    encryption: query.oneOf('encryption', encryptions, 'Auto'),
    useStartTls: query.bool(['usestarttls', 'starttls'], true),
    useHtml: query.bool('usehtml', false),
    clientHost: query.string('clienthost', 'localhost'),
  };
  query.done();
  if (
    (config.auth === 'Plain' || config.auth === 'CRAMMD5' || config.auth === 'OAuth2') &&
    config.username === ''
  ) {
    throw new ServiceUrlError(
      'smtp',
      'user',
      `auth=${config.auth} needs a username (smtp://USER:PASSWORD@host)`,
    );
  }
  return config;
}

/** The nodemailer transport options for a config: a pure mapping of shoutrrr's settings. */
export function smtpTransportOptions(
  config: SmtpConfig,
  context: Pick<SendContext, 'timeoutMs' | 'smtpCa'>,
): SMTPTransport.Options {
  const implicit =
    config.encryption === 'ImplicitTLS' || (config.encryption === 'Auto' && config.port === 465);
  const authenticate = config.auth !== 'None' && (config.auth !== 'Unknown' || config.username !== '');
  const method = config.auth === 'Plain' ? 'PLAIN' : config.auth === 'CRAMMD5' ? 'CRAM-MD5' : undefined;
  return {
    host: config.host,
    port: config.port,
    secure: implicit,
    requireTLS: !implicit && config.encryption === 'ExplicitTLS',
    ignoreTLS: !implicit && (config.encryption === 'None' || !config.useStartTls),
    name: config.clientHost === 'auto' ? undefined : config.clientHost,
    connectionTimeout: context.timeoutMs,
    greetingTimeout: context.timeoutMs,
    socketTimeout: context.timeoutMs,
    tls: { servername: config.host, ...(context.smtpCa === undefined ? {} : { ca: context.smtpCa }) },
    ...(authenticate
      ? config.auth === 'OAuth2'
        ? { auth: { type: 'OAuth2' as const, user: config.username, accessToken: config.password } }
        : {
            auth: { user: config.username, pass: config.password },
            ...(method ? { authMethod: method } : {}),
          }
      : {}),
  };
}

export function smtpMail(config: SmtpConfig, message: NotifyMessage): SMTPTransport.MailOptions {
  return {
    from: config.fromName ? { name: config.fromName, address: config.fromAddress } : config.fromAddress,
    to: [...config.toAddresses],
    subject: message.title ?? config.subject,
    ...(config.useHtml ? { html: message.body } : { text: message.body }),
  };
}

export const smtpService: NotifyService<SmtpConfig> = {
  scheme: 'smtp',
  shape:
    'smtp://[USER:PASSWORD@]HOST[:PORT]/?from=ADDRESS&to=ADDRESS[,ADDRESS…][&auth=None|Plain|CRAMMD5|OAuth2][&encryption=None|ExplicitTLS|ImplicitTLS|Auto][&fromname=…&subject=…]',
  example:
    'smtp://backup%40example.com:app-password@smtp.example.com:587/?from=backup@example.com&to=ops@example.com&encryption=ExplicitTLS',
  parse: parseSmtp,
  secrets: (config) => [config.password],
  async send(config, message, context) {
    const { createTransport } = await import('nodemailer');
    const transport = createTransport(smtpTransportOptions(config, context));
    try {
      await transport.sendMail(smtpMail(config, message));
    } finally {
      transport.close();
    }
  },
};
