import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
