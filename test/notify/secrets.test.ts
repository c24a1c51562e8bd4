import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifyCommand } from '../../src/cli/commands/notify.js';
import { startRecordingServer } from './recording-server.js';
import type { RecordingServer } from './recording-server.js';

let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer();
  // The worst case: a server that echoes the request, credentials and all, in its error. The
  // padding puts the first secret of each reply across the point where a short reply is cut.
  server.respond = (r, res) => {
    if (r.path.endsWith('/login')) {
      res.writeHead(200).end(`{"access_token":"${secrets.matrixSession}"}`);
      return;
    }
    res.writeHead(403).end(`${'.'.repeat(280)} ${r.path} ${JSON.stringify(r.headers)} ${r.body}`);
  };
});
afterAll(() => server.close());

const secrets = {
  bark: 'BarkDeviceKey77',
  discord: 'DiscordTok3nSecret',
  genericPassword: 'GenericPassw0rd',
  genericHeader: 'GenericHeaderSecret',
  googlechatKey: 'GchatKeySecret',
  googlechatToken: 'GchatTokenSecret',
  gotify: 'AgotifySecret.1',
  ifttt: 'IftttKeySecret9',
  join: 'JoinApiKeySecret',
  matrix: 'MatrixPassSecret',
  matrixSession: 'syt_MatrixSessionTok3n',
  mattermost: 'MattermostHookTok',
  ntfyPassword: 'NtfyPassw0rd-x',
  ntfyToken: 'tk_NtfyTokenSecret',
  opsgenie: 'OpsgenieKeySecret',
  pushbullet: 'o.PushbulletSecretToken0123456789a',
  pushover: 'PushoverTokSecret',
  pushoverUser: 'PushoverUserKeySecret',
  rocketchat: 'RocketTokBSecret',
  slack: 'SlackHookSecretPart0123456',
  smtp: 'SmtpPassSecret',
  teamsAltId: 'abcdef0123456789abcdef0123456789',
  teamsOwner: '55555555-6666-4777-8888-999999999999',
  telegram: '987654:TgSecretToken_42',
  zulip: 'ZulipKeySecret77',
};

/** One failing URL per service (logger:// cannot fail: it has nothing to send to). */
function urls(host: string): string[] {
  return [
    `bark://:${secrets.bark}@${host}/?scheme=http`,
    `discord://${secrets.discord}@112233`,
    `generic://gu:${secrets.genericPassword}@${host}/x?disabletls=yes&@Authorization=${secrets.genericHeader}`,
    `googlechat://${host}/v1/spaces/S/messages?key=${secrets.googlechatKey}&token=${secrets.googlechatToken}&disabletls=yes`,
    `gotify://${host}/${secrets.gotify}?disabletls=yes`,
    `ifttt://${secrets.ifttt}/?events=e`,
    `join://shoutrrr:${secrets.join}@join/?devices=d`,
    `matrix://bot:${secrets.matrix}@${host}/?disableTLS=yes&rooms=!r:x`,
    `mattermost://${host}/${secrets.mattermost}?disabletls=yes`,
    `ntfy://alice:${secrets.ntfyPassword}@${host}/t?scheme=http`,
    `ntfy://:${secrets.ntfyToken}@${host}/t?scheme=http`,
    `opsgenie://${host}/${secrets.opsgenie}?disabletls=yes`,
    `pushbullet://${secrets.pushbullet}`,
    `pushover://shoutrrr:${secrets.pushover}@${secrets.pushoverUser}/`,
    `rocketchat://${host}/RocketTokA/${secrets.rocketchat}?disabletls=yes`,
    `slack://hook:AAAAAAAAA-BBBBBBBBB-${secrets.slack}@webhook`,
    `smtp://u:${secrets.smtp}@127.0.0.1:1/?from=a@b.cz&to=c@d.cz`,
    `teams://11111111-4444-4444-8444-cccccccccccc@22222222-4444-4444-8444-cccccccccccc/${secrets.teamsAltId}/${secrets.teamsOwner}?host=example.webhook.office.com`,
    `telegram://${secrets.telegram}@telegram?chats=1`,
    `zulip://bot%40x.com:${secrets.zulip}@${host}/?stream=s&disabletls=yes`,
  ];
}

/** Every form a secret could be shown in: as is, URL-encoded, its second half, in Basic credentials, cut short. */
function forms(secret: string): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    secret.split(':')[1] ?? secret,
    secret.slice(0, Math.ceil(secret.length / 2)),
    secret.slice(Math.floor(secret.length / 2)),
    Buffer.from(`:${secret}`).toString('base64').slice(0, 12),
  ];
}

/** Runs `notify` as the CLI would; returns standard output and everything else shown (log, error). */
async function run(args: string[]): Promise<{ stdout: string; all: string }> {
  let stdout = '';
  let other = '';
  const command = notifyCommand({
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (other += t) },
    stdin: Readable.from(['']),
    env: {},
    apiBase: server.origin,
  });
  try {
    await command.parseAsync(args, { from: 'user' });
  } catch (error) {
    other += `${String(error)}\n${(error as Error).stack ?? ''}`;
  }
  return { stdout, all: `${stdout}\n${other}` };
}

describe('secrets never reach output or errors', () => {
  it('every service failing against an echoing server, in text and JSON output', async () => {
    const args = [
      'send',
      ...urls(server.host).flatMap((u) => ['--url', u]),
      '--title',
      'Tytuł',
      '--msg',
      'm',
      '--retries',
      '0',
      '--timeout',
      '2',
    ];
    const text = await run(args);
    const json = await run([...args, '--json']);
    const captured = `${text.all}\n${json.all}`;
    // Every service failed, and the fixed-origin ones were sent to the loopback server.
    expect(text.stdout.match(/^FAILED/gm)).toHaveLength(urls('').length);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; results: { ok: boolean }[] };
    expect(parsed.ok).toBe(false);
    expect(parsed.results.filter((r) => !r.ok)).toHaveLength(urls('').length);
    expect(server.requests.some((r) => r.path.startsWith('/bot987654'))).toBe(true);
    expect(server.requests.some((r) => r.path === '/1/messages.json')).toBe(true);
    // The echo reached the output (so a leak would show), blanked.
    expect(captured).toContain('server answered HTTP 403');
    expect(captured).toContain('***');
    for (const [service, secret] of Object.entries(secrets)) {
      for (const form of forms(secret))
        expect(captured, `${service} secret leaked as ${form}`).not.toContain(form);
    }
  });

  it('a bad --url is refused without showing its secret', async () => {
    const { all: captured } = await run([
      'send',
      '--url',
      `telegram://bad:${secrets.telegram}@telegram`,
      '--msg',
      'm',
    ]);
    expect(captured).toContain('UsageError');
    expect(captured).toContain('telegram URL: token');
    for (const form of forms(secrets.telegram)) expect(captured).not.toContain(form);
  });
});
