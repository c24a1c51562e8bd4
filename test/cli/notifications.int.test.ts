import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import { startRecordingServer } from '../notify/recording-server.js';
import type { RecordingServer } from '../notify/recording-server.js';
import { useTestDomains } from '../rig/test-domains.js';

const domains = useTestDomains();
let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.requests.length = 0;
  server.respond = (_request, response) => {
    response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
  };
});

function configWithHooks(): Record<string, string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ubt-notify-'));
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      'notify:',
      '  aliases:',
      '    ops:',
      '      name: ops-webhook',
      `      url: "generic://${server.host}/events?template=json&disabletls=yes"`,
      '  on-success: [ops]',
      '  on-failure: [ops]',
      '',
    ].join('\n'),
  );
  return { ...isolatedEnv(), UNIFI_BACKUP_CONFIG: config };
}

describe('notifications from the tool’s own verbs', () => {
  it('backup sends on-success with domain, level and host, and on-failure with the error', async () => {
    const env = configWithHooks();
    const domain = await domains.create({ disks: 1, writer: false });
    await runCliOk(['backup', 'incr', domain.name], env);
    expect(server.requests).toHaveLength(1);
    const success = server.requests[0];
    expect(success?.method).toBe('POST');
    expect(success?.path).toBe('/events');
    const sent = JSON.parse(success?.body ?? '{}') as { title: string; message: string };
    expect(sent.title).toBe(`unifi-backup: backup incr of ${domain.name} succeeded on ${os.hostname()}`);
    expect(sent.message).toContain(`Domain: ${domain.name}`);

    const failed = await runCli(['backup', 'incr', 'ubt-no-such-domain'], env);
    expect(failed.exitCode).toBe(1);
    expect(server.requests).toHaveLength(2);
    const failure = JSON.parse(server.requests[1]?.body ?? '{}') as { title: string; message: string };
    expect(failure.title).toContain('ubt-no-such-domain FAILED');
    expect(failure.message).toContain('no such domain');
  });

  it('a notification that cannot be delivered is a warning, not a failed backup', async () => {
    const env = configWithHooks();
    server.respond = (_request, response) => {
      response.writeHead(404).end('gone');
    };
    const domain = await domains.create({ disks: 1, writer: false });
    const result = await runCli(['backup', 'incr', domain.name], env);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toMatch(/warning: notification 'ops' failed/);
  });
});

describe('notify on the command line (no domain needed)', () => {
  it('the global --json reaches notify send and notify services', async () => {
    const sent = await runCliOk([
      '--json',
      'notify',
      'send',
      '--url',
      `generic+http://${server.host}/hook`,
      '--msg',
      'Zażółć',
    ]);
    expect(JSON.parse(sent.stdout)).toMatchObject({ ok: true, results: [{ alias: 'url', ok: true }] });
    expect(server.requests.map((r) => r.body)).toEqual(['Zażółć']);
    const services = JSON.parse((await runCliOk(['--json', 'notify', 'services'])).stdout) as {
      scheme: string;
    }[];
    expect(services.map((s) => s.scheme)).toContain('logger');
  });

  it('a bad --url is a usage error (exit 2) that names the part and hides the secret', async () => {
    const result = await runCli([
      'notify',
      'send',
      '--url',
      'gotify://gotify.example.com/NotAToken-s3cr3t',
      '--msg',
      'm',
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('gotify URL: token');
    expect(result.stderr).not.toContain('NotAToken-s3cr3t');
    expect(server.requests).toHaveLength(0);
  });

  it('notify send --config reads that notify.yaml only, not as the main config', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ubt-notify-'));
    const file = path.join(dir, 'notify.yaml');
    writeFileSync(file, `aliases:\n  ops:\n    url: "generic+http://${server.host}/ops"\n`);
    await runCliOk(['notify', 'send', '--config', file, '--alias', 'ops', '--msg', 'hello']);
    expect(server.requests.map((r) => r.path)).toEqual(['/ops']);
  });

  it('a broken notify.yaml names the line of the problem', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ubt-notify-'));
    const file = path.join(dir, 'notify.yaml');
    writeFileSync(file, 'aliases:\n  ops:\n    url: "logger://"\n    url: "logger://"\n');
    const result = await runCli(['notify', 'send', '--config', file, '--alias', 'ops', '--msg', 'm']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('line 4: Map keys must be unique');
  });

  it('logger:// writes the message to standard error', async () => {
    const result = await runCliOk([
      'notify',
      'send',
      '--url',
      'logger://',
      '--title',
      'Tytuł',
      '--msg',
      'バックアップ ✅',
    ]);
    expect(result.stderr).toContain('Tytuł\nバックアップ ✅');
  });

  it('UNIFI_BACKUP_NOTIFY_BASE_URL no longer redirects requests (and their tokens)', async () => {
    await runCli(
      [
        'notify',
        'send',
        '--url',
        'telegram://123456:SecretTok_1@telegram?chats=1',
        '--msg',
        'm',
        '--retries',
        '0',
        '--timeout',
        '2',
      ],
      { ...isolatedEnv(), UNIFI_BACKUP_NOTIFY_BASE_URL: server.origin },
    );
    expect(server.requests).toHaveLength(0);
  });
});
