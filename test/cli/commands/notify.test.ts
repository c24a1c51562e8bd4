import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { notifyCommand } from '../../../src/cli/commands/notify.js';
import { UsageError, UserError } from '../../../src/errors.js';
import { startRecordingServer } from '../../notify/recording-server.js';
import type { RecordingServer } from '../../notify/recording-server.js';

let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer();
});
afterAll(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
});

const gotifyToken = 'AsecretToken.99';

async function run(
  args: string[],
  stdin = '',
  env: NodeJS.ProcessEnv = {},
): Promise<{ out: string; error?: unknown }> {
  let out = '';
  const command = notifyCommand({
    stdout: { write: (t: string) => (out += t) },
    stdin: Readable.from([stdin]),
    env,
  });
  command.exitOverride();
  for (const sub of command.commands)
    sub.exitOverride().configureOutput({ writeErr: (t) => (out += t), writeOut: (t) => (out += t) });
  try {
    await command.parseAsync(args, { from: 'user' });
    return { out };
  } catch (error) {
    return { out, error };
  }
}

function notifyYaml(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'notify-cli-')), 'notify.yaml');
  writeFileSync(
    path,
    [
      'aliases:',
      '  gotify:',
      '    name: gotify-notify',
      `    url: "gotify://${server.host}/\${NOTIFY_GOTIFY_TOKEN}?disabletls=yes"`,
      '  hook:',
      '    name: hook',
      `    url: "generic://${server.host}/hook?disabletls=yes&template=json"`,
      '  dead:',
      '    name: dead',
      `    url: "gotify://127.0.0.1:1/${gotifyToken}?disabletls=yes"`,
    ].join('\n'),
  );
  return path;
}

describe('notify command', () => {
  it('sends exactly as the original tool is called', async () => {
    const config = notifyYaml();
    const { out, error } = await run(
      ['send', '--config', config, '--alias', 'gotify', '--title', 'Tytuł', '--msg', 'Wiadomosc'],
      '',
      { NOTIFY_GOTIFY_TOKEN: gotifyToken },
    );
    expect(error).toBeUndefined();
    expect(out).toMatch(/^sent +gotify \(gotify\)$/m);
    expect(server.requests).toHaveLength(1);
    expect(JSON.parse(server.requests[0]?.body ?? '')).toEqual({
      message: 'Wiadomosc',
      title: 'Tytuł',
      priority: 0,
    });
  });

  it('takes several aliases, --url, and --msg - from stdin; prints JSON', async () => {
    const config = notifyYaml();
    const { out, error } = await run(
      [
        'send',
        '--config',
        config,
        '--alias',
        'gotify',
        '--alias',
        'hook',
        '--url',
        `generic://${server.host}/u?disabletls=yes`,
        '--msg',
        '-',
        '--json',
      ],
      'from stdin\n',
      { NOTIFY_GOTIFY_TOKEN: gotifyToken },
    );
    expect(error).toBeUndefined();
    const parsed = JSON.parse(out) as { ok: boolean; results: { alias: string; ok: boolean }[] };
    expect(parsed.ok).toBe(true);
    expect(parsed.results.map((r) => r.alias)).toEqual(['gotify', 'hook', 'url']);
    expect(server.requests.map((r) => r.body)).toContain('from stdin');
    expect(out).not.toContain(gotifyToken);
  });

  it('exits non-zero when an alias fails, after sending to the others, without the secret', async () => {
    const config = notifyYaml();
    const { out, error } = await run(
      [
        'send',
        '--config',
        config,
        '--alias',
        'dead',
        '--alias',
        'hook',
        '--msg',
        'x',
        '--retries',
        '0',
        '--timeout',
        '2',
      ],
      '',
      { NOTIFY_GOTIFY_TOKEN: gotifyToken },
    );
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(1);
    expect((error as Error).message).toMatch(/1 of 2 notifications failed: dead/);
    expect(out).toMatch(/^FAILED +dead/m);
    expect(out).toMatch(/^sent +hook/m);
    expect(`${out}${(error as Error).message}`).not.toContain(gotifyToken);
  });

  it('usage errors: no target, unknown alias, bad --timeout', async () => {
    const config = notifyYaml();
    const env = { NOTIFY_GOTIFY_TOKEN: gotifyToken };
    for (const args of [
      ['send', '--msg', 'x'],
      ['send', '--config', config, '--alias', 'nosuch', '--msg', 'x'],
      ['send', '--url', 'ntfy://ntfy.sh/t', '--msg', 'x', '--timeout', 'soon'],
    ]) {
      const { error } = await run(args, '', env);
      expect(error, args.join(' ')).toBeInstanceOf(UsageError);
    }
  });

  it('notify test sends a test message', async () => {
    const config = notifyYaml();
    const { error } = await run(['test', '--config', config, '--alias', 'hook'], '', {
      NOTIFY_GOTIFY_TOKEN: gotifyToken,
    });
    expect(error).toBeUndefined();
    expect(JSON.parse(server.requests[0]?.body ?? '')).toMatchObject({
      title: 'unifi-backup test notification',
    });
  });

  it('notify services lists every scheme with its URL shape', async () => {
    const { out } = await run(['services', '--json']);
    const services = JSON.parse(out) as { scheme: string; shape: string }[];
    expect(services.map((s) => s.scheme).sort()).toEqual(
      [
        'bark',
        'discord',
        'generic',
        'googlechat',
        'gotify',
        'ifttt',
        'join',
        'logger',
        'matrix',
        'mattermost',
        'ntfy',
        'opsgenie',
        'pushbullet',
        'pushover',
        'rocketchat',
        'slack',
        'smtp',
        'teams',
        'telegram',
        'zulip',
      ].sort(),
    );
    const text = await run(['services']);
    expect(text.out).toContain('telegram://TOKEN@telegram?chats=');
  });
});
