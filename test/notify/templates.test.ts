import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotifyConfigError } from '../../src/notify/config.js';
import { notifyOutcome, renderOutcome } from '../../src/notify/templates.js';
import { startRecordingServer } from './recording-server.js';
import type { RecordingServer } from './recording-server.js';

let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer();
});
afterAll(() => server.close());

const failure = {
  verb: 'backup',
  domain: 'web1',
  level: 'incr',
  host: 'kvm01',
  ok: false,
  durationMs: 3_723_000,
  bytes: 1_610_612_736,
  error: 'blockcommit failed',
};

describe('outcome messages', () => {
  it('carry domain, level, host, duration, bytes and error', () => {
    const message = renderOutcome(failure);
    expect(message.title).toBe('unifi-backup: backup incr of web1 FAILED on kvm01');
    expect(message.body).toContain('Domain: web1');
    expect(message.body).toContain('Duration: 1h 2m 3s');
    expect(message.body).toContain('Error: blockcommit failed');
    expect(renderOutcome({ ...failure, ok: true }).body).toContain('Data: 1.5 GiB');
  });

  it('templates can be overridden', () => {
    const message = renderOutcome(failure, { failure: { title: '[{{status}}] {{domain}}@{{host}}' } });
    expect(message.title).toBe('[failed] web1@kvm01');
    expect(message.body).toContain('Error: blockcommit failed');
  });

  it('notifyOutcome sends to on-failure aliases only for failures', async () => {
    const config = {
      aliases: { ops: { name: 'ops', url: `generic://${server.host}/ops?disabletls=yes&template=json` } },
      'on-failure': ['ops'],
      'on-success': [],
    };
    expect(await notifyOutcome(config, { ...failure, ok: true })).toEqual([]);
    const results = await notifyOutcome(config, failure, { retries: 0 });
    expect(results.map((r) => [r.alias, r.ok])).toEqual([['ops', true]]);
    expect(JSON.parse(server.requests[0]?.body ?? '')).toMatchObject({
      title: 'unifi-backup: backup incr of web1 FAILED on kvm01',
    });
  });

  it('a bad notify section is reported with paths', async () => {
    await expect(
      notifyOutcome(
        { 'on-failure': 'ops' as unknown as string[], templates: { failure: { title: '{{nope}}' } } },
        failure,
      ),
    ).rejects.toBeInstanceOf(NotifyConfigError);
  });
});
