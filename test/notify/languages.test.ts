import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeHeaderValue } from '../../src/notify/http-request.js';
import { sendToTarget } from '../../src/notify/send.js';
import { startRecordingServer } from './recording-server.js';
import type { RecordedRequest, RecordingServer } from './recording-server.js';

const languages = [
  ['Polish', 'Tytuł: kopia zapasowa gotowa', 'Zażółć gęślą jaźń — ĄĘŁŃÓŚŹŻ'],
  ['German', 'Sicherung geprüft: Größe', 'Änderungen übernommen, Straße grün'],
  ['Japanese', 'バックアップ完了', '仮想マシンのバックアップが完了しました'],
  ['emoji', '✅ Backup 🎉', '💾 vm1 👍🏽 done 👨‍👩‍👧'],
] as const;

/**
 * Each service's URL, and whether the message title reaches the service (googlechat, mattermost
 * and rocketchat send the body only, as shoutrrr does).
 */
const services: readonly (readonly [string, string, boolean])[] = [
  ['bark', 'bark://:devkey@HOST/?scheme=http', true],
  ['discord', 'discord://tok@1122', true],
  ['generic', 'generic://HOST/hook?template=json&disabletls=yes', true],
  ['generic (title in a header)', 'generic://HOST/hook?disabletls=yes&@X-Title=Tytuł', false],
  ['googlechat', 'googlechat://HOST/v1/spaces/S/messages?key=k&token=t&disabletls=yes', false],
  ['gotify', 'gotify://HOST/AzyoeNS.D4iJLVa?disabletls=yes', true],
  ['ifttt', 'ifttt://key/?events=e&titlevalue=1', true],
  ['join', 'join://shoutrrr:key@join/?devices=d', true],
  ['matrix', 'matrix://:tok@HOST/?rooms=!r:x&disableTLS=yes', true],
  ['mattermost', 'mattermost://HOST/hooktok?disabletls=yes', false],
  ['ntfy', 'ntfy://HOST/topic?scheme=http', true],
  ['opsgenie', 'opsgenie://HOST/key?disabletls=yes', true],
  ['pushbullet', 'pushbullet://o.abcdefghijklmnopqrstuvwxyz012345', true],
  ['pushover', 'pushover://shoutrrr:tok@user/', true],
  ['rocketchat', 'rocketchat://HOST/a/b?disabletls=yes', false],
  ['slack', 'slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001', true],
  [
    'teams',
    'teams://11111111-4444-4444-8444-cccccccccccc@22222222-4444-4444-8444-cccccccccccc/33333333012222222222333333333344/44444444-4444-4444-8444-cccccccccccc?host=x.webhook.office.com',
    true,
  ],
  ['telegram', 'telegram://123:abc@telegram?chats=1', true],
  ['zulip', 'zulip://bot%40x.com:key@HOST/?stream=s&disabletls=yes', true],
];

/** RFC 2047 B-encoded words back to text; adjacent words join without the space between them. */
function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?UTF-8\?B\?([^?]*)\?=/gi, (_, data: string) => Buffer.from(data, 'base64').toString('utf8'));
}

/** Everything a service could have put the text in: path and query, headers, the body in every encoding. */
function received(r: RecordedRequest): string {
  const query = new URL(r.path, 'http://x').searchParams;
  const headers = Object.values(r.headers)
    .flat()
    .map((v) => decodeWords(String(v)));
  let json = '';
  try {
    json = JSON.stringify(JSON.parse(r.body));
  } catch {
    // not JSON
  }
  return [
    decodeURIComponent(r.path),
    ...query.values(),
    ...headers,
    r.body,
    ...new URLSearchParams(r.body).values(),
    json,
  ].join('\n');
}

let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer();
});
afterAll(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
  server.respond = (r, res) => {
    if (r.path.includes('/join/')) res.writeHead(200).end('{"room_id":"!r:x"}');
    else res.writeHead(200).end('{"ok":true,"code":200}');
  };
});

describe('titles and bodies in Polish, German, Japanese and emoji reach every service intact', () => {
  const cases = services.flatMap(([service, url, titleKept]) =>
    languages.map(([language, title, body]) => [service, language, url, titleKept, title, body] as const),
  );
  it.each(cases)('%s: %s', async (_service, _language, url, titleKept, title, body) => {
    const result = await sendToTarget(
      { alias: 'a', url: url.replaceAll('HOST', server.host) },
      { title, body },
      {
        apiBase: server.origin,
        retries: 0,
        timeoutMs: 5000,
      },
    );
    expect(result.error).toBeUndefined();
    expect(result.attempts).toBe(1);
    const text = server.requests.map(received).join('\n');
    expect(text).toContain(body);
    if (titleKept) expect(text).toContain(title);
  });
});

describe('RFC 2047 header values', () => {
  it('leaves ASCII alone and encodes anything else in words of at most 75 characters', () => {
    expect(encodeHeaderValue('Backup done')).toBe('Backup done');
    expect(encodeHeaderValue('Café')).toBe('=?UTF-8?B?Q2Fmw6k=?=');
    const long = `${'Zażółć gęślą jaźń '.repeat(8)}👍🏽`;
    const words = encodeHeaderValue(long).split(' ');
    expect(words.length).toBeGreaterThan(1);
    for (const word of words) expect(word.length).toBeLessThanOrEqual(75);
    expect(decodeWords(encodeHeaderValue(long))).toBe(long);
  });

  it('a title fetch cannot send as it is no longer fails, and a deterministic failure is tried once', async () => {
    server.respond = (_r, res) => res.writeHead(400).end('bad request');
    const result = await sendToTarget(
      { alias: 'n', url: `ntfy://${server.host}/topic?scheme=http` },
      { title: 'Tytuł', body: 'b' },
      { retries: 2, retryDelayMs: 1 },
    );
    expect(result.ok).toBe(false);
    expect(result.attempts).toBe(1);
    expect(server.requests).toHaveLength(1);
    expect(decodeWords(String(server.requests[0]?.headers.title))).toBe('Tytuł');
  });
});
