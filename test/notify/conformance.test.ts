import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NotifyMessage } from '../../src/notify/message.js';
import { parseServiceUrl } from '../../src/notify/registry.js';
import { sendToTarget } from '../../src/notify/send.js';
import { startRecordingServer } from './recording-server.js';
import type { RecordedRequest, RecordingServer, Responder } from './recording-server.js';

/**
 * What shoutrrr (containrrr/shoutrrr, pkg/services/*) sends for each documented URL parameter,
 * captured by a loopback server. HOST stands for the server's host:port; services with a fixed
 * origin are sent to it through the injected base URL.
 */
interface Expected {
  readonly method: string;
  readonly path: string | RegExp;
  readonly headers?: Readonly<Record<string, string | undefined>>;
  readonly json?: unknown;
  readonly form?: Readonly<Record<string, string>>;
  readonly text?: string;
}

interface Row {
  readonly service: string;
  readonly parameter: string;
  readonly url: string;
  readonly message?: NotifyMessage;
  readonly respond?: Responder;
  readonly requests: readonly Expected[];
}

const message: NotifyMessage = { title: 'Backup done', body: 'vm1: incr ok' };
const untitled: NotifyMessage = { body: 'vm1: incr ok' };

const basic = (credentials: string): string => `Basic ${Buffer.from(credentials).toString('base64')}`;
const group = '11111111-4444-4444-8444-cccccccccccc';
const tenant = '22222222-4444-4444-8444-cccccccccccc';
const owner = '44444444-4444-4444-8444-cccccccccccc';
const altId = '33333333012222222222333333333344';
const teamsPath = `/webhookb2/${group}@${tenant}/IncomingWebhook/${altId}/${owner}`;
const teamsCard = (extra: Record<string, unknown> = {}): unknown => ({
  '@type': 'MessageCard',
  '@context': 'http://schema.org/extensions',
  markdown: true,
  title: 'Backup done',
  summary: 'Backup done',
  sections: [{ text: 'vm1: incr ok', startGroup: false }],
  ...extra,
});
const slackHook = 'hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook';
const slackHookPath = '/services/WNA3PBYV6/F20DUQND3RQ/Webc4MAvoacrpPakR8phF0zi';
const matrixLogin: Responder = (r, res) => {
  if (r.path.endsWith('/login')) res.writeHead(200).end('{"access_token":"syt_session_token"}');
  else if (r.path.includes('/join/')) res.writeHead(200).end('{"room_id":"!room:example.org"}');
  else if (r.path.endsWith('/joined_rooms'))
    res.writeHead(200).end('{"joined_rooms":["!joined:example.org"]}');
  else res.writeHead(200).end('{}');
};
const barkOk: Responder = (_r, res) => res.writeHead(200).end('{"code":200,"message":"success"}');

const rows: Row[] = [
  // bark (docs: bark://:devicekey@host; overview: bark://devicekey@host)
  ...(
    [
      ['example', '', {}],
      ['title', '&title=Preset', {}],
      ['sound', '&sound=alarm', { sound: 'alarm' }],
      ['badge', '&badge=5', { badge: 5 }],
      ['icon', '&icon=https://i.example/x.png', { icon: 'https://i.example/x.png' }],
      ['group', '&group=backups', { group: 'backups' }],
      ['url', '&url=https://example.com', { url: 'https://example.com' }],
      ['category', '&category=CAT', { category: 'CAT' }],
      ['copy', '&copy=text', { copy: 'text' }],
    ] as const
  ).map(([parameter, query, extra]): Row => ({
    service: 'bark',
    parameter,
    url: `bark://:devkey123@HOST/?scheme=http${query}`,
    respond: barkOk,
    requests: [
      {
        method: 'POST',
        path: '/push',
        headers: { 'content-type': 'application/json' },
        json: { body: 'vm1: incr ok', device_key: 'devkey123', title: 'Backup done', badge: 0, ...extra },
      },
    ],
  })),
  {
    service: 'bark',
    parameter: 'scheme, path, device key as user',
    url: 'bark://devkey123@HOST/sub/?scheme=http',
    message: untitled,
    respond: barkOk,
    requests: [
      {
        method: 'POST',
        path: '/sub/push',
        json: { body: 'vm1: incr ok', device_key: 'devkey123', title: '', badge: 0 },
      },
    ],
  },

  // discord
  {
    service: 'discord',
    parameter: 'example',
    url: 'discord://W3dE2OZz4C13_4z_uHfDOoC7BqTW288s-z1ykqI0iJnY_HjRqMGO8Sc7YDqvf_KVKjhJ@693853386302554172',
    requests: [
      {
        method: 'POST',
        path: '/api/webhooks/693853386302554172/W3dE2OZz4C13_4z_uHfDOoC7BqTW288s-z1ykqI0iJnY_HjRqMGO8Sc7YDqvf_KVKjhJ',
        headers: { 'content-type': 'application/json' },
        json: { embeds: [{ title: 'Backup done', description: 'vm1: incr ok', color: 0x50d9ff }] },
      },
    ],
  },
  ...(
    [
      [
        'title',
        '?title=Preset',
        untitled,
        { embeds: [{ title: 'Preset', description: 'vm1: incr ok', color: 0x50d9ff }] },
      ],
      [
        'username',
        '?username=Backup',
        message,
        {
          embeds: [{ title: 'Backup done', description: 'vm1: incr ok', color: 0x50d9ff }],
          username: 'Backup',
        },
      ],
      [
        'avatar',
        '?avatar=https://a.example/x.png',
        message,
        {
          embeds: [{ title: 'Backup done', description: 'vm1: incr ok', color: 0x50d9ff }],
          avatar_url: 'https://a.example/x.png',
        },
      ],
      [
        'avatarurl',
        '?avatarurl=https://a.example/x.png',
        message,
        {
          embeds: [{ title: 'Backup done', description: 'vm1: incr ok', color: 0x50d9ff }],
          avatar_url: 'https://a.example/x.png',
        },
      ],
      [
        'color',
        '?color=0xff0000',
        message,
        { embeds: [{ title: 'Backup done', description: 'vm1: incr ok', color: 0xff0000 }] },
      ],
      [
        'colorError',
        '?colorError=0x111111',
        message,
        { embeds: [{ title: 'Backup done', description: 'vm1: incr ok', color: 0x50d9ff }] },
      ],
      [
        'colorWarn',
        '?colorWarn=0x222222',
        message,
        { embeds: [{ title: 'Backup done', description: 'vm1: incr ok', color: 0x50d9ff }] },
      ],
      [
        'colorInfo',
        '?colorInfo=0x333333',
        message,
        { embeds: [{ title: 'Backup done', description: 'vm1: incr ok', color: 0x50d9ff }] },
      ],
      [
        'colorDebug',
        '?colorDebug=0x444444',
        message,
        { embeds: [{ title: 'Backup done', description: 'vm1: incr ok', color: 0x50d9ff }] },
      ],
      [
        'splitLines',
        '?splitLines=no',
        { title: 'T', body: 'a\nb' },
        { embeds: [{ title: 'T', description: 'a\nb', color: 0x50d9ff }] },
      ],
    ] as const
  ).map(([parameter, query, sent, json]): Row => ({
    service: 'discord',
    parameter,
    url: `discord://tok3n@112233${query}`,
    message: sent,
    requests: [{ method: 'POST', path: '/api/webhooks/112233/tok3n', json }],
  })),
  {
    service: 'discord',
    parameter: 'json',
    url: 'discord://tok3n@112233?json=yes',
    message: { body: '{"content":"raw"}' },
    requests: [{ method: 'POST', path: '/api/webhooks/112233/tok3n', text: '{"content":"raw"}' }],
  },

  // generic
  {
    service: 'generic',
    parameter: 'example @acceptLanguage (header)',
    url: 'generic://HOST?@acceptLanguage=tlh-Piqd&disabletls=yes',
    requests: [
      {
        method: 'POST',
        path: '/',
        headers: {
          'accept-language': 'tlh-Piqd',
          'content-type': 'application/json',
          accept: 'application/json',
        },
        text: 'vm1: incr ok',
      },
    ],
  },
  {
    service: 'generic',
    parameter: 'example $projection (json template field)',
    url: 'generic://HOST?$projection=retroazimuthal&template=json&disabletls=yes',
    requests: [
      {
        method: 'POST',
        path: '/',
        json: { title: 'Backup done', message: 'vm1: incr ok', projection: 'retroazimuthal' },
      },
    ],
  },
  {
    service: 'generic',
    parameter: 'generic+http (shortcut URL)',
    url: 'generic+http://HOST/api/v1/postStuff',
    requests: [{ method: 'POST', path: '/api/v1/postStuff', text: 'vm1: incr ok' }],
  },
  {
    service: 'generic',
    parameter: 'generic+http forwards every query parameter',
    url: 'generic+http://HOST/api/v1/postStuff?contenttype=text/plain&template=json&x=1',
    requests: [
      {
        method: 'POST',
        path: '/api/v1/postStuff?contenttype=text%2Fplain&template=json&x=1',
        headers: { 'content-type': 'application/json' },
        text: 'vm1: incr ok',
      },
    ],
  },
  {
    service: 'generic',
    parameter: 'contenttype',
    url: 'generic://HOST/hook?contenttype=text/plain&disabletls=yes',
    requests: [
      {
        method: 'POST',
        path: '/hook',
        headers: { 'content-type': 'text/plain', accept: 'text/plain' },
        text: 'vm1: incr ok',
      },
    ],
  },
  {
    service: 'generic',
    parameter: '__ escape forwards a reserved key',
    url: 'generic://HOST/hook?__contenttype=text/plain&__title=t&disabletls=yes',
    requests: [
      {
        method: 'POST',
        path: '/hook?contenttype=text%2Fplain&title=t',
        headers: { 'content-type': 'application/json' },
        text: 'vm1: incr ok',
      },
    ],
  },
  {
    service: 'generic',
    parameter: 'disabletls (y)',
    url: 'generic://HOST/hook?disabletls=y',
    requests: [{ method: 'POST', path: '/hook', text: 'vm1: incr ok' }],
  },
  {
    service: 'generic',
    parameter: 'template, title, titlekey, messagekey',
    url: 'generic://HOST/hook?template=json&title=Preset&titlekey=subject&messagekey=text&disabletls=yes',
    message: untitled,
    requests: [{ method: 'POST', path: '/hook', json: { subject: 'Preset', text: 'vm1: incr ok' } }],
  },
  ...(['PATCH', 'DELETE', 'PUT'] as const).map((method): Row => ({
    service: 'generic',
    parameter: `method=${method}`,
    url: `generic://HOST/hook?method=${method.toLowerCase()}&disabletls=yes`,
    requests: [{ method, path: '/hook', text: 'vm1: incr ok' }],
  })),
  {
    service: 'generic',
    parameter: 'method=GET sends no body',
    url: 'generic://HOST/hook?method=GET&disabletls=yes&q=1',
    requests: [{ method: 'GET', path: '/hook?q=1', text: '' }],
  },
  {
    service: 'generic',
    parameter: 'user:password (Basic)',
    url: 'generic://u:p4ss@HOST/hook?disabletls=yes',
    requests: [
      { method: 'POST', path: '/hook', headers: { authorization: basic('u:p4ss') }, text: 'vm1: incr ok' },
    ],
  },

  // googlechat (and hangouts)
  {
    service: 'googlechat',
    parameter: 'example (body only)',
    url: 'googlechat://HOST/v1/spaces/FOO/messages?key=bar&token=baz&disabletls=yes',
    requests: [
      { method: 'POST', path: '/v1/spaces/FOO/messages?key=bar&token=baz', json: { text: 'vm1: incr ok' } },
    ],
  },
  {
    service: 'googlechat',
    parameter: 'hangouts scheme',
    url: 'hangouts://HOST/v1/spaces/FOO/messages?key=bar&token=baz&disabletls=yes',
    requests: [
      { method: 'POST', path: '/v1/spaces/FOO/messages?key=bar&token=baz', json: { text: 'vm1: incr ok' } },
    ],
  },

  // gotify
  {
    service: 'gotify',
    parameter: 'example title and priority',
    url: 'gotify://HOST/AzyoeNS.D4iJLVa/?title=Great+News&priority=1&disabletls=yes',
    message: untitled,
    requests: [
      {
        method: 'POST',
        path: '/message?token=AzyoeNS.D4iJLVa',
        json: { message: 'vm1: incr ok', title: 'Great News', priority: 1 },
      },
    ],
  },
  {
    service: 'gotify',
    parameter: 'example with a path',
    url: 'gotify://HOST/path/to/gotify/AzyoeNS.D4iJLVa/?disabletls=yes',
    requests: [
      {
        method: 'POST',
        path: '/path/to/gotify/message?token=AzyoeNS.D4iJLVa',
        json: { message: 'vm1: incr ok', title: 'Backup done', priority: 0 },
      },
    ],
  },

  // ifttt
  {
    service: 'ifttt',
    parameter: 'events, value1-3, messagevalue, titlevalue, title',
    url: 'ifttt://whkey123/?events=ev1,ev2&value1=a&value3=c&messagevalue=2&titlevalue=3&title=Preset',
    message: untitled,
    requests: ['ev1', 'ev2'].map((event) => ({
      method: 'POST',
      path: `/trigger/${event}/with/key/whkey123`,
      json: { value1: 'a', value2: 'vm1: incr ok', value3: 'Preset' },
    })),
  },

  // join
  {
    service: 'join',
    parameter: 'devices, icon, title',
    url: 'join://shoutrrr:apikey123@join/?devices=d1,d2&icon=https://i.example/i.png&title=Preset',
    message: untitled,
    requests: [
      {
        method: 'POST',
        path: `/_ah/api/messaging/v1/sendPush?${new URLSearchParams({ deviceIds: 'd1,d2', apikey: 'apikey123', text: 'vm1: incr ok', title: 'Preset', icon: 'https://i.example/i.png' }).toString()}`,
      },
    ],
  },

  // logger: no HTTP request at all (checked below)

  // matrix: v3 where shoutrrr uses r0 (documented difference)
  {
    service: 'matrix',
    parameter: 'user:password, rooms, disableTLS',
    url: 'matrix://bot:hunter2pass@HOST/?rooms=backups:example.org&disableTLS=yes',
    respond: matrixLogin,
    requests: [
      {
        method: 'POST',
        path: '/_matrix/client/v3/login',
        json: {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: 'bot' },
          password: 'hunter2pass',
        },
      },
      {
        method: 'POST',
        path: '/_matrix/client/v3/join/%23backups%3Aexample.org',
        headers: { authorization: 'Bearer syt_session_token' },
      },
      {
        method: 'PUT',
        path: /^\/_matrix\/client\/v3\/rooms\/!room%3Aexample.org\/send\/m.room.message\/[0-9a-f-]+$/,
        json: { msgtype: 'm.text', body: 'Backup done\nvm1: incr ok' },
      },
    ],
  },
  {
    service: 'matrix',
    parameter: 'room (alias of rooms), title',
    url: 'matrix://:syt_token@HOST/?room=!room:example.org&title=Preset&disableTLS=yes',
    message: untitled,
    respond: matrixLogin,
    requests: [
      {
        method: 'GET',
        path: '/_matrix/client/v3/account/whoami',
        headers: { authorization: 'Bearer syt_token' },
      },
      { method: 'POST', path: '/_matrix/client/v3/join/!room%3Aexample.org' },
      {
        method: 'PUT',
        path: /^\/_matrix\/client\/v3\/rooms\/!room%3Aexample.org\/send\/m.room.message\//,
        json: { msgtype: 'm.text', body: 'Preset\nvm1: incr ok' },
      },
    ],
  },
  {
    service: 'matrix',
    parameter: 'r0 homeserver (what shoutrrr speaks) when v3 is unknown',
    url: 'matrix://:syt_token@HOST/?disableTLS=yes',
    respond: (r, res) => {
      if (r.path.startsWith('/_matrix/client/v3/')) res.writeHead(404).end('{"errcode":"M_UNRECOGNIZED"}');
      else matrixLogin(r, res);
    },
    requests: [
      { method: 'GET', path: '/_matrix/client/v3/account/whoami' },
      { method: 'GET', path: '/_matrix/client/r0/account/whoami' },
      { method: 'GET', path: '/_matrix/client/r0/joined_rooms' },
      {
        method: 'PUT',
        path: /^\/_matrix\/client\/r0\/rooms\/!joined%3Aexample.org\/send\/m.room.message\//,
        json: { msgtype: 'm.text', body: 'Backup done\nvm1: incr ok' },
      },
    ],
  },

  // mattermost (body only)
  {
    service: 'mattermost',
    parameter: 'example user and channel',
    url: 'mattermost://shoutrrrUser@HOST/bywsw8zt5jgpte3nm65qjiru6h/shoutrrrChannel?disabletls=yes',
    requests: [
      {
        method: 'POST',
        path: '/hooks/bywsw8zt5jgpte3nm65qjiru6h',
        json: { text: 'vm1: incr ok', username: 'shoutrrrUser', channel: 'shoutrrrChannel' },
      },
    ],
  },
  ...(
    [
      ['icon', ':floppy_disk:', { icon_emoji: ':floppy_disk:' }],
      ['icon_emoji', ':cd:', { icon_emoji: ':cd:' }],
      ['icon_url', 'https://i.example/i.png', { icon_url: 'https://i.example/i.png' }],
      ['title', 'Ignored', {}],
    ] as const
  ).map(([parameter, value, extra]): Row => ({
    service: 'mattermost',
    parameter,
    url: `mattermost://HOST/bywsw8zt5jgpte3nm65qjiru6h?${parameter}=${value}&disabletls=yes`,
    requests: [
      { method: 'POST', path: '/hooks/bywsw8zt5jgpte3nm65qjiru6h', json: { text: 'vm1: incr ok', ...extra } },
    ],
  })),

  // ntfy
  ...(
    [
      ['title', 'title=Preset', untitled, { title: 'Preset' }],
      ['priority', 'priority=high', message, { priority: '4' }],
      ['tags', 'tags=floppy_disk,cd', message, { tags: 'floppy_disk,cd' }],
      ['actions', 'actions=view,Open,https://x.example', message, { actions: 'view,Open,https://x.example' }],
      ['click', 'click=https://x.example', message, { click: 'https://x.example' }],
      ['attach', 'attach=https://x.example/f.txt', message, { attach: 'https://x.example/f.txt' }],
      ['filename', 'filename=f.txt', message, { filename: 'f.txt' }],
      ['delay', 'delay=30m', message, { delay: '30m' }],
      ['at', 'at=tomorrow', message, { delay: 'tomorrow' }],
      ['in', 'in=1h', message, { delay: '1h' }],
      ['email', 'email=ops@example.com', message, { email: 'ops@example.com' }],
      ['icon', 'icon=https://x.example/i.png', message, { 'x-icon': 'https://x.example/i.png' }],
      ['cache', 'cache=no', message, { cache: 'no' }],
      ['firebase', 'firebase=no', message, { firebase: 'no' }],
    ] as const
  ).map(([parameter, query, sent, headers]): Row => ({
    service: 'ntfy',
    parameter,
    url: `ntfy://HOST/backups?scheme=http&${query}`,
    message: sent,
    requests: [{ method: 'POST', path: '/backups', headers, text: 'vm1: incr ok' }],
  })),
  {
    service: 'ntfy',
    parameter: 'username:password',
    url: 'ntfy://alice:pw1234@HOST/backups?scheme=http',
    requests: [
      {
        method: 'POST',
        path: '/backups',
        headers: { authorization: basic('alice:pw1234'), title: 'Backup done' },
        text: 'vm1: incr ok',
      },
    ],
  },
  {
    service: 'ntfy',
    parameter: 'token without user (Basic :token)',
    url: 'ntfy://:tk_abcdefghijklmnop@HOST/backups?scheme=http',
    requests: [
      {
        method: 'POST',
        path: '/backups',
        headers: { authorization: basic(':tk_abcdefghijklmnop') },
        text: 'vm1: incr ok',
      },
    ],
  },

  // opsgenie
  {
    service: 'opsgenie',
    parameter: 'example with every alert field',
    url: 'opsgenie://HOST/eb243592-faa2-4ba2-a551q-1afdf565c889?alias=Life+is+too+short+for+no+alias&description=Every+alert+needs+a+description&actions=An+action&tags=["tag1","tag2"]&entity=An+example+entity&source=The+source&priority=P1&user=Dracula&note=Here+is+a+note&disabletls=yes',
    requests: [
      {
        method: 'POST',
        path: '/v2/alerts',
        headers: { authorization: 'GenieKey eb243592-faa2-4ba2-a551q-1afdf565c889' },
        json: {
          message: 'Backup done',
          alias: 'Life is too short for no alias',
          description: 'vm1: incr ok\nEvery alert needs a description',
          actions: ['An action'],
          tags: ['tag1', 'tag2'],
          entity: 'An example entity',
          source: 'The source',
          priority: 'P1',
          user: 'Dracula',
          note: 'Here is a note',
        },
      },
    ],
  },
  {
    service: 'opsgenie',
    parameter: 'responders, visibleTo, details, title',
    url: 'opsgenie://HOST/token123?responders=[{"username":"superuser","type":"user"}]&visibleTo=team:NOC&details={"k":"v"}&title=Preset&disabletls=yes',
    message: untitled,
    requests: [
      {
        method: 'POST',
        path: '/v2/alerts',
        json: {
          message: 'Preset',
          description: 'vm1: incr ok',
          responders: [{ username: 'superuser', type: 'user' }],
          visibleTo: [{ type: 'team', name: 'NOC' }],
          details: { k: 'v' },
        },
      },
    ],
  },

  // pushbullet
  {
    service: 'pushbullet',
    parameter: 'device, #channel, email, title',
    url: 'pushbullet://o.abcdefghijklmnopqrstuvwxyz012345/dev1/%23chan/a@b.cz?title=Preset',
    message: untitled,
    requests: [{ device_iden: 'dev1' }, { channel_tag: 'chan' }, { email: 'a@b.cz' }].map((target) => ({
      method: 'POST',
      path: '/v2/pushes',
      headers: { 'access-token': 'o.abcdefghijklmnopqrstuvwxyz012345' },
      json: { type: 'note', title: 'Preset', body: 'vm1: incr ok', ...target },
    })),
  },

  // pushover
  {
    service: 'pushover',
    parameter: 'example devices, title, priority',
    url: 'pushover://shoutrrr:apptoken123@userkey456/?devices=phone,tablet&title=Custom+Title&priority=1',
    message: untitled,
    requests: [
      {
        method: 'POST',
        path: '/1/messages.json',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        form: {
          token: 'apptoken123',
          user: 'userkey456',
          message: 'vm1: incr ok',
          device: 'phone,tablet',
          title: 'Custom Title',
          priority: '1',
        },
      },
    ],
  },
  {
    service: 'pushover',
    parameter: 'priority=2 (accepted, sent without a priority as shoutrrr does)',
    url: 'pushover://shoutrrr:apptoken123@userkey456/?priority=2',
    requests: [
      {
        method: 'POST',
        path: '/1/messages.json',
        form: { token: 'apptoken123', user: 'userkey456', message: 'vm1: incr ok', title: 'Backup done' },
      },
    ],
  },

  {
    service: 'pushover',
    parameter: "a message over Pushover's limits is cut, not refused",
    url: 'pushover://shoutrrr:apptoken123@userkey456/',
    message: { title: 'ł'.repeat(300), body: '👍'.repeat(1100) },
    requests: [
      {
        method: 'POST',
        path: '/1/messages.json',
        form: {
          token: 'apptoken123',
          user: 'userkey456',
          message: `${'👍'.repeat(1023)}…`,
          title: `${'ł'.repeat(249)}…`,
          priority: '0',
        },
      },
    ],
  },

  // rocketchat (body only)
  ...(
    [
      ['example channel', '/shoutrrrChannel', { channel: '#shoutrrrChannel' }],
      ['example @receiver', '/@shoutrrrReceiver', { channel: '@shoutrrrReceiver' }],
    ] as const
  ).map(([parameter, target, extra]): Row => ({
    service: 'rocketchat',
    parameter,
    url: `rocketchat://shoutrrrUser@HOST/8eGdRzc9r4YYNyvge/2XYQcX9NBwJBKfQnphpebPcnXZcPEi32Nt4NKJfrnbhsbRfX${target}?disabletls=yes`,
    requests: [
      {
        method: 'POST',
        path: '/hooks/8eGdRzc9r4YYNyvge/2XYQcX9NBwJBKfQnphpebPcnXZcPEi32Nt4NKJfrnbhsbRfX',
        json: { text: 'vm1: incr ok', username: 'shoutrrrUser', ...extra },
      },
    ],
  })),

  // slack
  {
    service: 'slack',
    parameter: 'example webhook: color, title, icon, botname',
    url: `slack://${slackHook}?color=good&title=Great+News&icon=man-scientist&botname=Shoutrrrbot`,
    message: untitled,
    respond: (_r, res) => res.writeHead(200).end('ok'),
    requests: [
      {
        method: 'POST',
        path: slackHookPath,
        json: {
          text: 'Great News',
          username: 'Shoutrrrbot',
          attachments: [{ text: 'vm1: incr ok', color: 'good' }],
          icon_emoji: 'man-scientist',
        },
      },
    ],
  },
  {
    service: 'slack',
    parameter: 'example bot token: channel, thread_ts, icon_url, username',
    url: 'slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L?thread_ts=1.2&icon_url=https://i.example/i.png&username=bk',
    requests: [
      {
        method: 'POST',
        path: '/api/chat.postMessage',
        headers: { authorization: 'Bearer xoxb-123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N' },
        json: {
          text: 'Backup done',
          username: 'bk',
          attachments: [{ text: 'vm1: incr ok' }],
          thread_ts: '1.2',
          channel: 'C001CH4NN3L',
          icon_url: 'https://i.example/i.png',
        },
      },
    ],
  },

  // teams
  {
    service: 'teams',
    parameter: 'host, color',
    url: `teams://${group}@${tenant}/${altId}/${owner}?host=example.webhook.office.com&color=ff0000`,
    requests: [{ method: 'POST', path: teamsPath, json: teamsCard({ themeColor: 'ff0000' }) }],
  },
  {
    service: 'teams',
    parameter: 'title',
    url: `teams://${group}@${tenant}/${altId}/${owner}?host=example.webhook.office.com&title=Preset`,
    message: untitled,
    requests: [{ method: 'POST', path: teamsPath, json: teamsCard({ title: 'Preset', summary: 'Preset' }) }],
  },
  {
    service: 'teams',
    parameter: 'legacy URL form (outlook.office.com)',
    url: `teams://${group}@${tenant}:${altId}@${owner}`,
    requests: [{ method: 'POST', path: teamsPath.replace('/webhookb2/', '/webhook/'), json: teamsCard() }],
  },
  {
    service: 'teams',
    parameter: 'teams+https:// webhook URL',
    url: `teams+https://example.webhook.office.com${teamsPath}`,
    requests: [{ method: 'POST', path: teamsPath, json: teamsCard() }],
  },

  // telegram
  {
    service: 'telegram',
    parameter: 'chats (with a thread), preview, notification',
    url: 'telegram://123456:ABC-def_ghi@telegram?chats=@chan,-100123:42&preview=no&notification=no',
    requests: [
      {
        method: 'POST',
        path: '/bot123456:ABC-def_ghi/sendMessage',
        json: {
          text: '<b>Backup done</b>\nvm1: incr ok',
          chat_id: '@chan',
          parse_mode: 'HTML',
          disable_web_page_preview: true,
          disable_notification: true,
        },
      },
      {
        method: 'POST',
        path: '/bot123456:ABC-def_ghi/sendMessage',
        json: {
          text: '<b>Backup done</b>\nvm1: incr ok',
          chat_id: '-100123',
          message_thread_id: 42,
          parse_mode: 'HTML',
          disable_web_page_preview: true,
          disable_notification: true,
        },
      },
    ],
  },
  {
    service: 'telegram',
    parameter: 'example channels, parseMode, title',
    url: 'telegram://123456:ABC-def_ghi@telegram/?channels=@chan&parseMode=Markdown&title=Preset',
    message: untitled,
    requests: [
      {
        method: 'POST',
        path: '/bot123456:ABC-def_ghi/sendMessage',
        json: {
          text: 'vm1: incr ok',
          chat_id: '@chan',
          parse_mode: 'Markdown',
          disable_web_page_preview: false,
          disable_notification: false,
        },
      },
    ],
  },

  // zulip
  {
    service: 'zulip',
    parameter: 'example stream and topic (the URL topic wins over the title)',
    url: 'zulip://my-bot%40zulipchat.com:correcthorsebatterystable@HOST?stream=foo&topic=bar&disabletls=yes',
    requests: [
      {
        method: 'POST',
        path: '/api/v1/messages',
        headers: { authorization: basic('my-bot@zulipchat.com:correcthorsebatterystable') },
        form: { type: 'stream', to: 'foo', content: 'Backup done\nvm1: incr ok', topic: 'bar' },
      },
    ],
  },
  {
    service: 'zulip',
    parameter: 'title (alias of topic)',
    url: 'zulip://bot%40x.com:key123@HOST?stream=foo&title=bar&disabletls=yes',
    message: untitled,
    requests: [
      {
        method: 'POST',
        path: '/api/v1/messages',
        form: { type: 'stream', to: 'foo', content: 'vm1: incr ok', topic: 'bar' },
      },
    ],
  },
  {
    service: 'zulip',
    parameter: 'no topic: a long title becomes the topic, cut to 60 characters',
    url: 'zulip://bot%40x.com:key123@HOST?stream=foo&disabletls=yes',
    message: { title: `unifi-backup: backup incr of ${'a'.repeat(60)} succeeded`, body: 'b' },
    requests: [
      {
        method: 'POST',
        path: '/api/v1/messages',
        form: {
          type: 'stream',
          to: 'foo',
          content: 'b',
          topic: `${'unifi-backup: backup incr of '.padEnd(59, 'a')}…`,
        },
      },
    ],
  },
];

let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer();
});
afterAll(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
  server.respond = (_r, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
});

const withHost = (url: string): string => url.replaceAll('HOST', server.host);

function check(actual: RecordedRequest, expected: Expected, label: string): void {
  expect(actual.method, label).toBe(expected.method);
  if (typeof expected.path === 'string') expect(actual.path, label).toBe(expected.path);
  else expect(actual.path, label).toMatch(expected.path);
  for (const [name, value] of Object.entries(expected.headers ?? {}))
    expect(actual.headers[name], `${label}: header ${name}`).toBe(value);
  if (expected.json !== undefined) expect(JSON.parse(actual.body), label).toEqual(expected.json);
  if (expected.form !== undefined)
    expect(Object.fromEntries(new URLSearchParams(actual.body)), label).toEqual(expected.form);
  if (expected.text !== undefined) expect(actual.body, label).toBe(expected.text);
}

describe('conformance with shoutrrr, one row per documented parameter', () => {
  it.each(rows.map((row) => [`${row.service}: ${row.parameter}`, row] as const))('%s', async (_name, row) => {
    if (row.respond) server.respond = row.respond;
    const result = await sendToTarget(
      { alias: row.service, url: withHost(row.url) },
      row.message ?? message,
      {
        apiBase: server.origin,
        retries: 0,
        timeoutMs: 5000,
      },
    );
    expect(result.error).toBeUndefined();
    expect(result.scheme).toBe(row.service);
    expect(server.requests).toHaveLength(row.requests.length);
    row.requests.forEach((expected, index) => {
      check(server.requests[index] as RecordedRequest, expected, `${row.service} request ${index + 1}`);
    });
  });

  it('covers every service but smtp (tested against a real SMTP server) and logger (below)', () => {
    const covered = new Set(rows.map((r) => r.service));
    expect([...covered].sort()).toEqual(
      [
        'bark',
        'discord',
        'generic',
        'googlechat',
        'gotify',
        'ifttt',
        'join',
        'matrix',
        'mattermost',
        'ntfy',
        'opsgenie',
        'pushbullet',
        'pushover',
        'rocketchat',
        'slack',
        'teams',
        'telegram',
        'zulip',
      ].sort(),
    );
  });

  it('discord splits a long message over several webhook calls within its limits, dropping nothing', async () => {
    const lines = Array.from({ length: 12 }, (_, i) => `line ${i + 1}`);
    const long = 'x'.repeat(4500);
    await sendToTarget(
      { alias: 'd', url: 'discord://tok@1122' },
      { title: 'T', body: lines.join('\n') },
      { apiBase: server.origin, retries: 0 },
    );
    await sendToTarget(
      { alias: 'd', url: 'discord://tok@1122?splitlines=no' },
      { title: 'T', body: long },
      { apiBase: server.origin, retries: 0 },
    );
    const payloads = server.requests.map(
      (r) => JSON.parse(r.body) as { embeds: { title?: string; description: string }[] },
    );
    expect(payloads.map((p) => p.embeds.length)).toEqual([10, 2, 3]);
    expect(payloads.map((p) => p.embeds[0]?.title)).toEqual(['T', 'T', 'T']);
    expect(payloads.slice(0, 2).flatMap((p) => p.embeds.map((e) => e.description))).toEqual(lines);
    expect(payloads[2]?.embeds.map((e) => e.description.length)).toEqual([2000, 2000, 500]);
  });

  it('telegram sends a text over 4096 characters as several messages, cut at line ends, nothing dropped', async () => {
    const lines = Array.from({ length: 300 }, (_, i) => `${i} & ${'ż'.repeat(20)}`);
    const oneLine = `${'a'.repeat(4090)}&&&&&&&&`;
    for (const body of [lines.join('\n'), oneLine]) {
      server.requests.length = 0;
      const result = await sendToTarget(
        { alias: 't', url: 'telegram://123:abc@telegram?chats=1' },
        { title: 'T', body },
        { apiBase: server.origin, retries: 0 },
      );
      expect(result.ok).toBe(true);
      const texts = server.requests.map((r) => (JSON.parse(r.body) as { text: string }).text);
      expect(texts.length).toBeGreaterThan(1);
      for (const text of texts) {
        expect(text.length).toBeLessThanOrEqual(4096);
        expect(text, 'no HTML entity cut in two').not.toMatch(/&[a-z0-9#]{0,6}$/);
      }
      // A cut at a line end drops that newline; a cut inside the one long line drops nothing.
      const joined = body === oneLine ? `${texts[0] ?? ''}\n${texts.slice(1).join('')}` : texts.join('\n');
      expect(joined.replaceAll('&amp;', '&')).toBe(`<b>T</b>\n${body}`);
    }
  });

  it('logger:// writes the title and body to the log and makes no request', async () => {
    let logged = '';
    const result = await sendToTarget({ alias: 'log', url: 'logger://' }, message, {
      log: (text) => (logged += text),
      apiBase: server.origin,
    });
    expect(result.ok).toBe(true);
    expect(logged).toBe('Backup done\nvm1: incr ok\n');
    expect(server.requests).toHaveLength(0);
  });
});

/** Every URL example of shoutrrr's docs/services/*.md with the placeholders filled in. */
const documentedUrls = [
  'bark://:devicekey@api.day.app',
  'bark://devicekey@api.day.app',
  'discord://W3dE2OZz4C13_4z_uHfDOoC7BqTW288s-z1ykqI0iJnY_HjRqMGO8Sc7YDqvf_KVKjhJ@693853386302554172',
  'smtp://user:pass@mail.example.com:587/?from=a@example.com&to=b@example.com,c@example.com',
  'generic+https://example.com/api/v1/postStuff',
  'generic+https://example.com/api/v1/postStuff?_contenttype=text/plain',
  'generic+https://example.com/api/v1/postStuff?contenttype=text/plain',
  'generic://example.com?$projection=retroazimuthal',
  'generic://example.com?@acceptLanguage=tlh-Piqd',
  'googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=bar&token=baz',
  'hangouts://chat.googleapis.com/v1/spaces/FOO/messages?key=bar&token=baz',
  'gotify://gotify.example.com/AzyoeNS.D4iJLVa',
  'gotify://example.com:443/path/to/gotify/AzyoeNS.D4iJLVa/?title=Great+News&priority=1',
  'gotify://gotify.example.com:443/AzyoeNS.D4iJLVa/?title=Great+News&priority=1',
  'ifttt://key/?events=event1,event2&value1=value1&value2=value2&value3=value3',
  'join://shoutrrr:api-key@join/?devices=device1,device2&icon=icon&title=title',
  'logger://',
  'matrix://user:password@host:8448/?rooms=!roomID1,roomAlias2&disableTLS=yes',
  'matrix://:token@host',
  'mattermost://shoutrrrUser@your-domain.com/bywsw8zt5jgpte3nm65qjiru6h/shoutrrrChannel',
  'mattermost://your-domain.com/bywsw8zt5jgpte3nm65qjiru6h',
  'ntfy://username:password@ntfy.sh/topic',
  'opsgenie://api.opsgenie.com/eb243592-faa2-4ba2-a551q-1afdf565c889',
  'opsgenie://api.opsgenie.com/eb243592-faa2-4ba2-a551q-1afdf565c889?alias=Life+is+too+short+for+no+alias&description=Every+alert+needs+a+description&actions=An+action&tags=["tag1","tag2"]&entity=An+example+entity&source=The+source&priority=P1&user=Dracula&note=Here+is+a+note',
  'opsgenie://api.eu.opsgenie.com/token?tags=["tag1","tag2"]&description=testing&responders=[{"username":"superuser", "type": "user"}]&entity=Example Entity&source=Example Source&actions=["asdf", "bcde"]',
  'pushbullet://o.abcdefghijklmnopqrstuvwxyz012345/device/#channel/a@example.com',
  'pushover://shoutrrr:apiToken@userKey/?devices=device1,device2',
  'pushover://shoutrrr:token@userKey/?devices=device&title=Custom+Title&priority=1',
  'rocketchat://shoutrrrUser@your-domain.com/8eGdRzc9r4YYNyvge/2XYQcX9NBwJBKfQnphpebPcnXZcPEi32Nt4NKJfrnbhsbRfX/@shoutrrrReceiver',
  'rocketchat://shoutrrrUser@your-domain.com/8eGdRzc9r4YYNyvge/2XYQcX9NBwJBKfQnphpebPcnXZcPEi32Nt4NKJfrnbhsbRfX/shoutrrrChannel',
  'rocketchat://your-domain.com/8eGdRzc9r4YYNyvge/2XYQcX9NBwJBKfQnphpebPcnXZcPEi32Nt4NKJfrnbhsbRfX',
  'slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook?color=good&title=Great+News&icon=man-scientist&botname=Shoutrrrbot',
  'slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L?color=good&title=Great+News&icon=man-scientist&botname=Shoutrrrbot',
  'slack://AAAAAAAAA/BBBBBBBBB/123456789123456789123456',
  `teams://${group}@${tenant}/${altId}/${owner}?host=example.webhook.office.com`,
  'telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@channel-1,chat-id-1',
  'telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram/?channels=channel&notification=no&preview=false&parseMode=html',
  'zulip://my-bot%40zulipchat.com:correcthorsebatterystable@example.zulipchat.com?stream=foo&topic=bar',
];

describe("shoutrrr's documented URL examples", () => {
  it.each(documentedUrls)('%s parses', (url) => {
    expect(() => parseServiceUrl(url)).not.toThrow();
  });
});
