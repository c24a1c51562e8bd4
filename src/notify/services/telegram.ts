import { jsonRequest } from '../http-request.js';
import type { HttpRequest } from '../http-request.js';
import type { NotifyMessage } from '../message.js';
import { httpService } from '../service.js';
import { QueryReader, ServiceUrlError } from '../service-url.js';
import type { UrlParts } from '../service-url.js';

const parseModes = ['None', 'Markdown', 'HTML', 'MarkdownV2'] as const;

export interface TelegramConfig {
  readonly token: string;
  readonly chats: readonly string[];
  readonly preview: boolean;
  readonly notification: boolean;
  readonly parseMode: (typeof parseModes)[number];
  readonly title: string;
}

export function parseTelegram(parts: UrlParts): TelegramConfig {
  const token = `${parts.user}:${parts.password}`;
  if (!/^[0-9]+:[a-zA-Z0-9_-]+$/.test(token)) {
    throw new ServiceUrlError(
      'telegram',
      'token',
      'expected BOTID:SECRET before the @ (as given by BotFather)',
    );
  }
  const query = new QueryReader(parts, [
    'chats',
    'channels',
    'preview',
    'notification',
    'parsemode',
    'title',
  ]);
  const chats = query.list(['chats', 'channels']);
  if (chats.length === 0) {
    throw new ServiceUrlError(
      'telegram',
      'query parameter "chats"',
      'missing; give chat IDs or @channel names',
    );
  }
  const config = {
    token,
    chats,
    preview: query.bool('preview', true),
    notification: query.bool('notification', true),
    parseMode: query.oneOf('parsemode', parseModes, 'None'),
    title: query.string('title'),
  };
  query.done();
  return config;
}

function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&#34;');
}

// Telegram's limit for one message's text; longer text goes out as several messages.
const textLimit = 4096;

/** A line cut into pieces of at most `limit` UTF-16 units, never inside a character or an HTML entity. */
function cutLine(line: string, limit: number): string[] {
  const pieces: string[] = [];
  let rest = line;
  while (rest.length > limit) {
    let cut = limit;
    if (/[\uDC00-\uDFFF]/.test(rest.charAt(cut))) cut -= 1;
    const amp = rest.lastIndexOf('&', cut - 1);
    if (amp > 0 && rest.indexOf(';', amp) >= cut && rest.indexOf(';', amp) - amp < 8) cut = amp;
    pieces.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  return [...pieces, rest];
}

/** The text in messages of at most Telegram's limit, cut at line ends where it can be. */
export function telegramTexts(text: string): string[] {
  const texts: string[] = [];
  let current = '';
  for (const line of text.split('\n').flatMap((l) => cutLine(l, textLimit))) {
    const joined = current === '' ? line : `${current}\n${line}`;
    if (joined.length <= textLimit) current = joined;
    else {
      texts.push(current);
      current = line;
    }
  }
  return [...texts, current];
}

export function telegramRequests(
  config: TelegramConfig,
  message: NotifyMessage,
  origin: string,
): HttpRequest[] {
  const title = message.title ?? config.title;
  let parseMode = config.parseMode;
  let text = message.body;
  if (parseMode === 'None' && title !== '') {
    parseMode = 'HTML';
    text = escapeHtml(text);
  }
  if (parseMode === 'HTML' && title !== '') text = `<b>${escapeHtml(title)}</b>\n${text}`;
  const texts = telegramTexts(text);
  return config.chats.flatMap((chat) => {
    const [chatId, thread] = chat.split(':', 2);
    const threadId = thread !== undefined && /^\d+$/.test(thread) ? Number(thread) : undefined;
    return texts.map((piece) =>
      jsonRequest('POST', `${origin}/bot${config.token}/sendMessage`, {
        text: piece,
        chat_id: chatId,
        ...(threadId === undefined ? {} : { message_thread_id: threadId }),
        ...(parseMode === 'None' ? {} : { parse_mode: parseMode }),
        disable_web_page_preview: !config.preview,
        disable_notification: !config.notification,
      }),
    );
  });
}

export const telegramService = httpService<TelegramConfig>({
  scheme: 'telegram',
  shape:
    'telegram://TOKEN@telegram?chats=CHAT[,CHAT…][&parsemode=None|HTML|Markdown|MarkdownV2][&preview=yes][&notification=yes]',
  example: 'telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@backups,-1001234567',
  parse: parseTelegram,
  secrets: (config) => [config.token, config.token.split(':')[1] ?? ''],
  origin: 'https://api.telegram.org',
  requests: telegramRequests,
});
