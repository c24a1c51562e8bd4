import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { redactSecrets, redactUrl } from '../../src/notify/redact.js';
import { sendNotifications, sendToTarget } from '../../src/notify/send.js';
import { startRecordingServer } from './recording-server.js';
import type { RecordingServer } from './recording-server.js';

let server: RecordingServer;
let silent: Server;
let silentPort: number;
const sockets: Socket[] = [];
let closedPort: number;

beforeAll(async () => {
  server = await startRecordingServer();
  // Accepts connections and never answers: the endpoint that hangs.
  silent = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = (silent.address() as AddressInfo).port;
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) =>
    probe.close(() => {
      resolve();
    }),
  );
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) =>
    silent.close(() => {
      resolve();
    }),
  );
  await server.close();
});

const secret = 'AzyoeNS.D4iJLVa';
const message = { title: 'T', body: 'M' };

describe('sending', () => {
  it('times out on an endpoint that never answers, without showing the secret', async () => {
    const started = Date.now();
    const result = await sendToTarget(
      { alias: 'hang', url: `gotify://127.0.0.1:${silentPort}/${secret}?disabletls=yes` },
      message,
      { timeoutMs: 300, retries: 1, retryDelayMs: 10 },
    );
    expect(Date.now() - started).toBeLessThan(3000);
    expect(result).toMatchObject({ ok: false, attempts: 2, error: 'timed out' });
    expect(JSON.stringify(result)).not.toContain(secret);
  });

  it('reports a refused connection without the secret', async () => {
    const result = await sendToTarget(
      { alias: 'down', url: `ntfy://:tk_SuperSecret99@127.0.0.1:${closedPort}/topic?scheme=http` },
      message,
      { timeoutMs: 1000, retries: 0 },
    );
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/ECONNREFUSED|fetch failed/);
    expect(JSON.stringify(result)).not.toContain('tk_SuperSecret99');
  });

  it('retries a refused connection, but tries a request the client cannot even build once', async () => {
    const refused = await sendToTarget(
      { alias: 'down', url: `ntfy://127.0.0.1:${closedPort}/topic?scheme=http` },
      message,
      { timeoutMs: 1000, retries: 1, retryDelayMs: 1 },
    );
    expect(refused).toMatchObject({ ok: false, attempts: 2 });
    const invalid = await sendToTarget(
      { alias: 'bad', url: `generic://${server.host}/x?disabletls=yes&@Bad%20Name=v` },
      message,
      { timeoutMs: 1000, retries: 2, retryDelayMs: 1 },
    );
    expect(invalid).toMatchObject({ ok: false, attempts: 1 });
    expect(invalid.error).toMatch(/header name/i);
  });

  it('cuts a long reply only after blanking secrets, so no part of a token shows', async () => {
    const token = 'AzyoeNS.D4iJLVb';
    const answer = server.respond;
    onTestFinished(() => {
      server.respond = answer;
    });
    for (const padding of [290, 295, 299, 480, 495]) {
      server.respond = (_r, res) =>
        res.writeHead(403).end(`${'.'.repeat(padding)}${token}${'.'.repeat(600)}`);
      const result = await sendToTarget(
        { alias: 'g', url: `gotify://${server.host}/${token}?disabletls=yes` },
        message,
        { retries: 0 },
      );
      expect(result.ok).toBe(false);
      expect(result.error?.length).toBeLessThanOrEqual(501);
      for (let cut = 4; cut <= token.length; cut++)
        expect(result.error, `padding ${padding}`).not.toContain(token.slice(0, cut));
    }
  });

  it('one failing alias does not stop the others', async () => {
    server.requests.length = 0;
    const results = await sendNotifications(
      [
        { alias: 'broken', url: `gotify://127.0.0.1:${closedPort}/${secret}?disabletls=yes` },
        { alias: 'bad-url', url: 'telegram://nope@telegram' },
        { alias: 'good', url: `generic://${server.host}/ok?disabletls=yes` },
      ],
      message,
      { timeoutMs: 1000, retries: 0 },
    );
    expect(results.map((r) => [r.alias, r.ok])).toEqual([
      ['broken', false],
      ['bad-url', false],
      ['good', true],
    ]);
    expect(results[1]?.error).toContain('token');
    expect(server.requests).toHaveLength(1);
  });

  it('retries a 5xx and then succeeds; does not retry a 4xx', async () => {
    let calls = 0;
    server.respond = (_r, res) => {
      calls += 1;
      res.writeHead(calls === 1 ? 503 : 200).end('{}');
    };
    const retried = await sendToTarget(
      { alias: 'g', url: `generic://${server.host}/x?disabletls=yes` },
      message,
      { retryDelayMs: 5 },
    );
    expect([retried.ok, retried.attempts]).toEqual([true, 2]);
    server.respond = (_r, res) => res.writeHead(401).end('{"error":"unauthorized"}');
    const rejected = await sendToTarget(
      { alias: 'g', url: `generic://${server.host}/x?disabletls=yes` },
      message,
      { retryDelayMs: 5 },
    );
    expect([rejected.ok, rejected.attempts]).toEqual([false, 1]);
    expect(rejected.error).toContain('HTTP 401');
  });

  it('blanks a secret the server echoes back', async () => {
    server.respond = (r, res) => res.writeHead(400).end(`bad token in ${r.path}`);
    const result = await sendToTarget(
      { alias: 't', url: 'telegram://123:EchoedSecretValue@telegram?chats=1' },
      message,
      { apiBase: server.origin, retries: 0 },
    );
    expect(result.error).toContain('HTTP 400');
    expect(result.error).not.toContain('EchoedSecretValue');
    expect(result.error).toContain('***');
  });
});

describe('redaction', () => {
  it('blanks credentials, path and query values of a URL', () => {
    expect(redactUrl('smtp://user:pass@mail.example.com:587/?from=a@b.c&to=d@e.f')).toBe(
      'smtp://***@mail.example.com:587/?from=***&to=***',
    );
    expect(redactUrl('gotify://host/AzyoeNS.D4iJLVa')).toBe('gotify://host/***');
  });

  it('blanks plain, percent-encoded and form-encoded forms', () => {
    const text = 'a p@ss w0rd! b p%40ss%20w0rd! c p%40ss+w0rd%21';
    expect(redactSecrets(text, ['p@ss w0rd!'])).toBe('a *** b *** c ***');
  });
});
