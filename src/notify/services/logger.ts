import type { NotifyMessage } from '../message.js';
import { titledBody } from '../message.js';
import type { NotifyService } from '../service.js';
import { QueryReader } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

/** logger:// takes no settings; the URL is checked only for stray query parameters. */
export type LoggerConfig = Record<string, never>;

export function parseLogger(parts: UrlParts): LoggerConfig {
  new QueryReader(parts, []).done();
  return {};
}

/** The text logger:// writes: the title (if any) on its own line, then the body, newline-terminated. */
export function loggerText(message: NotifyMessage): string {
  return `${titledBody(message)}\n`;
}

export const loggerService: NotifyService<LoggerConfig> = {
  scheme: 'logger',
  shape: 'logger://',
  example: 'logger://',
  parse: parseLogger,
  secrets: () => [],
  send(_config, message, context) {
    context.log(loggerText(message));
    return Promise.resolve();
  },
};
