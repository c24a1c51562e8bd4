import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { listServices, parseServiceUrl } from '../../src/notify/registry.js';
import { ServiceUrlError } from '../../src/notify/service-url.js';

function partOf(url: string): string {
  try {
    parseServiceUrl(url);
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceUrlError);
    expect(error).toBeInstanceOf(UsageError);
    return (error as ServiceUrlError).part;
  }
  throw new Error(`parsed: ${url}`);
}

describe('service URLs', () => {
  it('every documented example parses', () => {
    for (const service of listServices()) {
      expect(() => parseServiceUrl(service.example), service.scheme).not.toThrow();
    }
  });

  it.each([
    ['telegram://notatoken@telegram?chats=1', 'token'],
    ['telegram://1:abc@telegram', 'query parameter "chats"'],
    ['telegram://1:abc@telegram?chats=1&parsemode=bold', 'query parameter "parsemode"'],
    ['telegram://1:abc@telegram?chats=1&prevew=no', 'query parameter "prevew"'],
    ['discord://@123', 'token'],
    ['discord://tok@123/other', 'path'],
    ['discord://tok@123?color=zzz', 'query parameter "color"'],
    ['slack://hook:short@webhook', 'token'],
    ['slack://xoxb:AAAAAAAAA-BBBBBBBBB-cccccccccccccccccccccccc@webhook', 'channel'],
    ['teams://nope@22222222-4444-4444-8444-cccccccccccc/a/b', 'group'],
    [
      'teams://11111111-4444-4444-8444-cccccccccccc@22222222-4444-4444-8444-cccccccccccc/short/44444444-4444-4444-8444-cccccccccccc',
      'altId',
    ],
    ['matrix://user@matrix.example.org/', 'password'],
    ['matrix://user:pw@matrix.example.org/?disabletls=maybe', 'query parameter "disabletls"'],
    ['mattermost://chat.example.com/', 'token'],
    ['mattermost:///token', 'host'],
    ['rocketchat://chat.example.com/onlyone', 'token'],
    ['zulip://chat.example.com/?stream=a', 'bot mail'],
    ['zulip://bot%40x.com@chat.example.com/?stream=a', 'API key'],
    ['zulip://bot%40x.com:key@chat.example.com/', 'query parameter "stream"'],
    ['googlechat://chat.googleapis.com/v1/spaces/X/messages?token=t', 'query parameter "key"'],
    ['googlechat://chat.googleapis.com/v1/spaces/X/messages?key=k', 'query parameter "token"'],
    ['ntfy://ntfy.sh/', 'topic'],
    ['ntfy://ntfy.sh/topic?priority=9', 'query parameter "priority"'],
    ['gotify://gotify.example.com/notatoken', 'token'],
    ['gotify://gotify.example.com/AzyoeNS.D4iJLVa?priority=high', 'query parameter "priority"'],
    ['pushover://userkey', 'API token'],
    ['pushover://shoutrrr:tok@', 'host'],
    ['pushover://shoutrrr:tok@user?priority=3', 'query parameter "priority"'],
    ['pushbullet://tooshort', 'token'],
    ['bark://api.day.app/', 'device key'],
    ['ifttt://key/', 'query parameter "events"'],
    ['ifttt://key/?events=a&messagevalue=2&titlevalue=2', 'query parameter "titlevalue"'],
    ['join://join/?devices=a', 'API key'],
    ['join://shoutrrr:key@join/', 'query parameter "devices"'],
    ['opsgenie://api.opsgenie.com/', 'API key'],
    ['opsgenie://api.opsgenie.com/key?priority=P9', 'query parameter "priority"'],
    ['opsgenie://api.opsgenie.com/key?responders=nonsense', 'query parameter "responders"'],
    ['generic:///path', 'host'],
    ['generic://example.com/x?template=xml', 'query parameter "template"'],
    ['generic://example.com/x?method=TRACE', 'query parameter "method"'],
    ['generic://example.com/x?method=GE%20T', 'query parameter "method"'],
    ['generic+ftp://example.com/x', 'scheme'],
    ['smtp://mail.example.com/?to=a@example.com', 'query parameter "from"'],
    ['smtp://mail.example.com/?from=a@example.com', 'query parameter "to"'],
    ['smtp://mail.example.com/?from=a@example.com&to=nobody', 'query parameter "to"'],
    [
      'smtp://mail.example.com/?from=a@example.com&to=b@example.com&encryption=SSL',
      'query parameter "encryption"',
    ],
    ['smtp://mail.example.com:99999/?from=a@example.com&to=b@example.com', 'port'],
    ['smtp://mail.example.com/?from=a@example.com&to=b@example.com&auth=Plain', 'user'],
    ['nosuch://x', 'scheme'],
    ['just some text', 'scheme'],
  ])('%s → names %s', (url, part) => {
    expect(partOf(url)).toBe(part);
  });

  it('errors never repeat the secret they reject', () => {
    for (const url of [
      'telegram://1:SuperSecretTok@telegram',
      'smtp://u:SuperSecretTok@mail.example.com/?from=x',
      'gotify://h/SuperSecretTok',
      'pushbullet://SuperSecretTok',
      'smtp://u:SuperSecretTok@mail.example.com:99999999/',
    ]) {
      try {
        parseServiceUrl(url);
        throw new Error('parsed');
      } catch (error) {
        expect((error as Error).message).not.toContain('SuperSecretTok');
      }
    }
  });

  it('accepts hangouts:// as googlechat and is case-insensitive about query keys', () => {
    expect(parseServiceUrl('hangouts://chat.googleapis.com/v1/spaces/X/messages?key=k&token=t').scheme).toBe(
      'googlechat',
    );
    expect(() => parseServiceUrl('telegram://1:abc@telegram?Chats=1&ParseMode=html')).not.toThrow();
  });
});
