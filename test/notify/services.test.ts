import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sendToTarget } from '../../src/notify/send.js';
import type { SendResult } from '../../src/notify/send.js';
import { startRecordingServer } from './recording-server.js';
import type { RecordedRequest, RecordingServer } from './recording-server.js';

let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer();
});
afterAll(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
  server.respond = (_r, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
});

const message = { title: 'Backup done', body: 'vm1: incr ok\nsecond line' };

async function send(url: string): Promise<SendResult> {
  const result = await sendToTarget({ alias: 'a', url }, message, {
    apiBase: server.origin,
    timeoutMs: 2000,
    retries: 0,
  });
  expect(result.error).toBeUndefined();
  expect(result.ok).toBe(true);
  return result;
}

function only(): RecordedRequest {
  expect(server.requests).toHaveLength(1);
  return server.requests[0] as RecordedRequest;
}

const json = (r: RecordedRequest): unknown => JSON.parse(r.body);
const form = (r: RecordedRequest): Record<string, string> => Object.fromEntries(new URLSearchParams(r.body));

describe('HTTP services against a loopback server', () => {
  it('telegram posts sendMessage per chat with the title in HTML', async () => {
    await send('telegram://123456:ABC-def_ghi@telegram?chats=@chan,-100123:42&preview=no');
    expect(server.requests).toHaveLength(2);
    const [first, second] = server.requests as [RecordedRequest, RecordedRequest];
    expect(first.method).toBe('POST');
    expect(first.path).toBe('/bot123456:ABC-def_ghi/sendMessage');
    expect(first.headers['content-type']).toBe('application/json');
    expect(json(first)).toEqual({
      text: '<b>Backup done</b>\nvm1: incr ok\nsecond line',
      chat_id: '@chan',
      parse_mode: 'HTML',
      disable_web_page_preview: true,
      disable_notification: false,
    });
    expect(json(second)).toMatchObject({ chat_id: '-100123', message_thread_id: 42 });
  });

  it('discord posts embeds to the webhook', async () => {
    await send('discord://tok3n@112233445566?username=Backup&color=0xff0000');
    const r = only();
    expect([r.method, r.path, r.headers['content-type']]).toEqual([
      'POST',
      '/api/webhooks/112233445566/tok3n',
      'application/json',
    ]);
    expect(json(r)).toEqual({
      embeds: [
        { title: 'Backup done', description: 'vm1: incr ok', color: 0xff0000 },
        { description: 'second line', color: 0xff0000 },
      ],
      username: 'Backup',
    });
  });

  it('slack webhook posts attachments to hooks path', async () => {
    server.respond = (_r, res) => res.writeHead(200).end('ok');
    await send('slack://hook:AAAAAAAAA-BBBBBBBBB-cccccccccccccccccccccccc@webhook?color=good&botname=bk');
    const r = only();
    expect([r.method, r.path]).toEqual(['POST', '/services/AAAAAAAAA/BBBBBBBBB/cccccccccccccccccccccccc']);
    expect(json(r)).toEqual({
      text: 'Backup done',
      username: 'bk',
      attachments: [
        { text: 'vm1: incr ok', color: 'good' },
        { text: 'second line', color: 'good' },
      ],
    });
  });

  it('slack bot token posts chat.postMessage with a bearer token', async () => {
    await send('slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L');
    const r = only();
    expect([r.method, r.path]).toEqual(['POST', '/api/chat.postMessage']);
    expect(r.headers.authorization).toBe('Bearer xoxb-123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N');
    expect(json(r)).toMatchObject({ channel: 'C001CH4NN3L', text: 'Backup done' });
  });

  it('slack bot API failure (ok:false) is an error', async () => {
    server.respond = (_r, res) => res.writeHead(200).end('{"ok":false,"error":"channel_not_found"}');
    const result = await sendToTarget(
      { alias: 's', url: 'slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001' },
      message,
      { apiBase: server.origin, retries: 0 },
    );
    expect(result.ok).toBe(false);
    expect(result.error).toContain('channel_not_found');
  });

  it('teams posts a MessageCard to the webhookb2 path', async () => {
    const group = '11111111-4444-4444-8444-cccccccccccc';
    const tenant = '22222222-4444-4444-8444-cccccccccccc';
    const owner = '44444444-4444-4444-8444-cccccccccccc';
    const alt = '33333333012222222222333333333344';
    await send(`teams://${group}@${tenant}/${alt}/${owner}?host=example.webhook.office.com&color=ff0000`);
    const r = only();
    expect([r.method, r.path]).toEqual([
      'POST',
      `/webhookb2/${group}@${tenant}/IncomingWebhook/${alt}/${owner}`,
    ]);
    expect(json(r)).toEqual({
      '@type': 'MessageCard',
      '@context': 'http://schema.org/extensions',
      markdown: true,
      title: 'Backup done',
      summary: 'Backup done',
      sections: [
        { text: 'vm1: incr ok', startGroup: false },
        { text: 'second line', startGroup: false },
      ],
      themeColor: 'ff0000',
    });
  });

  it('matrix logs in, joins the rooms and sends m.room.message', async () => {
    server.respond = (r, res) => {
      if (r.path.endsWith('/login')) res.writeHead(200).end('{"access_token":"syt_session"}');
      else if (r.path.includes('/join/')) res.writeHead(200).end('{"room_id":"!abc:example.org"}');
      else res.writeHead(200).end('{"event_id":"$e"}');
    };
    await send(`matrix://bot:hunter2pass@${server.host}/?rooms=backups:example.org&disabletls=yes`);
    const [login, join, message_] = server.requests as [RecordedRequest, RecordedRequest, RecordedRequest];
    expect([login.method, login.path]).toEqual(['POST', '/_matrix/client/v3/login']);
    expect(json(login)).toEqual({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: 'bot' },
      password: 'hunter2pass',
    });
    expect([join.method, join.path, join.headers.authorization]).toEqual([
      'POST',
      '/_matrix/client/v3/join/%23backups%3Aexample.org',
      'Bearer syt_session',
    ]);
    expect(message_.method).toBe('PUT');
    expect(message_.path).toMatch(
      /^\/_matrix\/client\/v3\/rooms\/!abc%3Aexample.org\/send\/m.room.message\/[0-9a-f-]+$/,
    );
    expect(json(message_)).toEqual({ msgtype: 'm.text', body: 'Backup done\nvm1: incr ok\nsecond line' });
  });

  it('matrix with a token and no rooms sends to every joined room', async () => {
    server.respond = (r, res) => {
      if (r.path.endsWith('/joined_rooms')) res.writeHead(200).end('{"joined_rooms":["!a:x","!b:x"]}');
      else res.writeHead(200).end('{}');
    };
    await send(`matrix://:syt_token123@${server.host}/?disabletls=yes`);
    expect(server.requests.map((r) => `${r.method} ${r.path.replace(/\/[^/]+$/, '')}`)).toEqual([
      'GET /_matrix/client/v3/account',
      'GET /_matrix/client/v3',
      'PUT /_matrix/client/v3/rooms/!a%3Ax/send/m.room.message',
      'PUT /_matrix/client/v3/rooms/!b%3Ax/send/m.room.message',
    ]);
    expect(server.requests[0]?.headers.authorization).toBe('Bearer syt_token123');
  });

  it('mattermost posts to /hooks/TOKEN with user and channel', async () => {
    await send(`mattermost://bkuser@${server.host}/hooktoken123/ops?icon=:floppy_disk:&disabletls=yes`);
    const r = only();
    expect([r.method, r.path]).toEqual(['POST', '/hooks/hooktoken123']);
    expect(json(r)).toEqual({
      text: 'vm1: incr ok\nsecond line',
      username: 'bkuser',
      channel: 'ops',
      icon_emoji: ':floppy_disk:',
    });
  });

  it('rocketchat posts to /hooks/A/B with the channel', async () => {
    await send(`rocketchat://bk@${server.host}/tokA/tokB/ops?disabletls=yes`);
    const r = only();
    expect([r.method, r.path]).toEqual(['POST', '/hooks/tokA/tokB']);
    expect(json(r)).toEqual({
      text: 'vm1: incr ok\nsecond line',
      username: 'bk',
      channel: '#ops',
    });
  });

  it('zulip posts a form with basic auth', async () => {
    await send(`zulip://bot%40example.com:zkey123@${server.host}/?stream=ops&disabletls=yes`);
    const r = only();
    expect([r.method, r.path, r.headers['content-type']]).toEqual([
      'POST',
      '/api/v1/messages',
      'application/x-www-form-urlencoded',
    ]);
    expect(r.headers.authorization).toBe(
      `Basic ${Buffer.from('bot@example.com:zkey123').toString('base64')}`,
    );
    expect(form(r)).toEqual({
      type: 'stream',
      to: 'ops',
      content: 'vm1: incr ok\nsecond line',
      topic: 'Backup done',
    });
  });

  it('googlechat posts text with key and token', async () => {
    await send(`googlechat://${server.host}/v1/spaces/FOO/messages?key=k1&token=t1&disabletls=yes`);
    const r = only();
    expect([r.method, r.path]).toEqual(['POST', '/v1/spaces/FOO/messages?key=k1&token=t1']);
    expect(json(r)).toEqual({ text: 'vm1: incr ok\nsecond line' });
  });

  it('ntfy posts the body with headers and basic auth', async () => {
    await send(`ntfy://alice:pw1234@${server.host}/backups?scheme=http&priority=high&tags=a,b&cache=no`);
    const r = only();
    expect([r.method, r.path, r.body]).toEqual(['POST', '/backups', 'vm1: incr ok\nsecond line']);
    expect(r.headers).toMatchObject({ title: 'Backup done', priority: '4', tags: 'a,b', cache: 'no' });
    expect(r.headers.authorization).toBe(`Basic ${Buffer.from('alice:pw1234').toString('base64')}`);
  });

  it('gotify posts JSON with the application token in the query, as shoutrrr does', async () => {
    await send(`gotify://${server.host}/sub/AzyoeNS.D4iJLVa/?priority=5&disabletls=yes`);
    const r = only();
    expect([r.method, r.path]).toEqual(['POST', '/sub/message?token=AzyoeNS.D4iJLVa']);
    expect(json(r)).toEqual({ message: 'vm1: incr ok\nsecond line', title: 'Backup done', priority: 5 });
  });

  it('pushover posts a form to messages.json', async () => {
    await send('pushover://shoutrrr:apptoken123@userkey456/?devices=phone,tablet&priority=1');
    const r = only();
    expect([r.method, r.path]).toEqual(['POST', '/1/messages.json']);
    expect(form(r)).toEqual({
      token: 'apptoken123',
      user: 'userkey456',
      message: 'vm1: incr ok\nsecond line',
      device: 'phone,tablet',
      title: 'Backup done',
      priority: '1',
    });
  });

  it('pushbullet posts a note per target with Access-Token', async () => {
    const token = 'o.abcdefghijklmnopqrstuvwxyz012345';
    await send(`pushbullet://${token}/dev1/#chan/a@b.cz`);
    expect(server.requests).toHaveLength(3);
    for (const r of server.requests) {
      expect([r.method, r.path, r.headers['access-token']]).toEqual(['POST', '/v2/pushes', token]);
    }
    expect(server.requests.map(json)).toEqual([
      { type: 'note', title: 'Backup done', body: 'vm1: incr ok\nsecond line', device_iden: 'dev1' },
      { type: 'note', title: 'Backup done', body: 'vm1: incr ok\nsecond line', channel_tag: 'chan' },
      { type: 'note', title: 'Backup done', body: 'vm1: incr ok\nsecond line', email: 'a@b.cz' },
    ]);
  });

  it('bark posts to /push with the device key', async () => {
    await send(`bark://:devkey99@${server.host}/bark/?scheme=http&sound=alarm&badge=3`);
    const r = only();
    expect([r.method, r.path]).toEqual(['POST', '/bark/push']);
    expect(json(r)).toEqual({
      body: 'vm1: incr ok\nsecond line',
      device_key: 'devkey99',
      title: 'Backup done',
      sound: 'alarm',
      badge: 3,
    });
  });

  it('ifttt triggers every event with the values', async () => {
    await send('ifttt://whkey42/?events=ev1,ev2&value1=v1&titlevalue=3');
    expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /trigger/ev1/with/key/whkey42',
      'POST /trigger/ev2/with/key/whkey42',
    ]);
    expect(json(server.requests[0] as RecordedRequest)).toEqual({
      value1: 'v1',
      value2: 'vm1: incr ok\nsecond line',
      value3: 'Backup done',
    });
  });

  it('join posts sendPush with everything in the query', async () => {
    await send('join://shoutrrr:joinkey77@join/?devices=d1,d2&icon=https://x.test/i.png');
    const r = only();
    const url = new URL(r.path, server.origin);
    expect([r.method, url.pathname]).toEqual(['POST', '/_ah/api/messaging/v1/sendPush']);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      deviceIds: 'd1,d2',
      apikey: 'joinkey77',
      text: 'vm1: incr ok\nsecond line',
      title: 'Backup done',
      icon: 'https://x.test/i.png',
    });
    expect(r.body).toBe('');
  });

  it('opsgenie posts an alert with the GenieKey', async () => {
    await send(
      `opsgenie://${server.host}/eb243592-faa2-4ba2-a551-1afdf565c889?priority=P2&tags=a,b&responders=team:NOC&disabletls=yes`,
    );
    const r = only();
    expect([r.method, r.path, r.headers.authorization]).toEqual([
      'POST',
      '/v2/alerts',
      'GenieKey eb243592-faa2-4ba2-a551-1afdf565c889',
    ]);
    expect(json(r)).toEqual({
      message: 'Backup done',
      description: 'vm1: incr ok\nsecond line',
      responders: [{ type: 'team', name: 'NOC' }],
      tags: ['a', 'b'],
      priority: 'P2',
    });
  });

  it('generic posts the plain message by default and forwards the query', async () => {
    await send(`generic://${server.host}/hook?disabletls=yes&x=1&__title=y`);
    const r = only();
    expect([r.method, r.path, r.body, r.headers['content-type']]).toEqual([
      'POST',
      '/hook?x=1&title=y',
      'vm1: incr ok\nsecond line',
      'application/json',
    ]);
  });

  it('generic with the json template, custom headers and extra fields', async () => {
    await send(
      `generic://${server.host}/api/v1?template=json&@acceptLanguage=tlh-Piqd&$projection=retro&method=PUT&disabletls=y`,
    );
    const r = only();
    expect([r.method, r.path, r.headers['accept-language']]).toEqual(['PUT', '/api/v1', 'tlh-Piqd']);
    expect(json(r)).toEqual({
      title: 'Backup done',
      message: 'vm1: incr ok\nsecond line',
      projection: 'retro',
    });
  });
});
