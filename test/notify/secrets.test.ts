import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifyCommand } from '../../src/cli/commands/notify.js';
import { startRecordingServer } from './recording-server.js';
import type { RecordingServer } from './recording-server.js';

let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer();
  // The worst case: a server that echoes the request, credentials and all, in its error.
  server.respond = (r, res) =>
    res.writeHead(403).end(`denied ${r.path} ${JSON.stringify(r.headers)} ${r.body}`);
});
afterAll(() => server.close());

const secrets = {
  telegram: '987654:TgSecretToken_42',
  gotify: 'AgotifySecret.1',
  ntfy: 'NtfyPassw0rd-x',
  zulip: 'ZulipKeySecret77',
  pushover: 'PushoverTokSecret',
  matrix: 'MatrixPassSecret',
  generic: 'GenericHeaderSecret',
};

describe('secrets never reach output or errors', () => {
  it('across every failing service, in text and JSON output', async () => {
    const urls = [
      `telegram://${secrets.telegram}@telegram?chats=1`,
      `gotify://${server.host}/${secrets.gotify}?disabletls=yes`,
      `ntfy://alice:${secrets.ntfy}@${server.host}/t?scheme=http`,
      `zulip://bot%40x.com:${secrets.zulip}@${server.host}/?stream=s&disabletls=yes`,
      `pushover://shoutrrr:${secrets.pushover}@userkey/`,
      `matrix://bot:${secrets.matrix}@${server.host}/?disabletls=yes`,
      `generic://${server.host}/x?disabletls=yes&@Authorization=${secrets.generic}`,
      `telegram://bad:${secrets.telegram}@telegram`,
      `smtp://u:${secrets.ntfy}@127.0.0.1:1/?from=a@b.cz&to=c@d.cz`,
    ];
    let captured = '';
    for (const json of [false, true]) {
      const command = notifyCommand({
        stdout: { write: (t: string) => (captured += t) },
        stdin: Readable.from(['']),
        env: { UNIFI_BACKUP_NOTIFY_BASE_URL: server.origin },
      });
      try {
        await command.parseAsync(
          [
            'send',
            ...urls.flatMap((u) => ['--url', u]),
            '--msg',
            'm',
            '--retries',
            '0',
            '--timeout',
            '2',
            ...(json ? ['--json'] : []),
          ],
          { from: 'user' },
        );
      } catch (error) {
        captured += `${String(error)}\n${(error as Error).stack ?? ''}`;
      }
    }
    // Fixed-origin services went to the loopback server, not the internet.
    expect(server.requests.some((r) => r.path.startsWith('/bot987654'))).toBe(true);
    expect(server.requests.some((r) => r.path === '/1/messages.json')).toBe(true);
    expect(captured).toContain('FAILED');
    expect(captured).toContain('"ok": false');
    for (const [service, secret] of Object.entries(secrets)) {
      for (const form of [secret, encodeURIComponent(secret), secret.split(':')[1] ?? secret]) {
        expect(captured, `${service} secret leaked`).not.toContain(form);
      }
    }
  });
});
