import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerOptions } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { sendToTarget } from '../../../src/notify/send.js';

const cert = readFileSync(new URL('../../fixtures/notify/smtp-cert.pem', import.meta.url), 'utf8');
const key = readFileSync(new URL('../../fixtures/notify/smtp-key.pem', import.meta.url), 'utf8');

interface Received {
  from: string;
  to: string[];
  data: string;
  secure: boolean;
  user: string | undefined;
}

let running: SMTPServer | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => {
    if (running)
      running.close(() => {
        resolve();
      });
    else resolve();
  });
  running = undefined;
});

async function startSmtp(options: SMTPServerOptions): Promise<{ port: number; mails: Received[] }> {
  const mails: Received[] = [];
  const server = new SMTPServer({
    ...options,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString('utf8'),
          secure: session.secure,
          user: session.user as string | undefined,
        });
        callback();
      });
    },
  });
  running = server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.server.address() as AddressInfo).port, mails };
}

const message = { title: 'Backup of vm1 done', body: 'level incr\n1.2 GiB' };

function decodeQuotedPrintable(text: string): string {
  const bytes = text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, hex: string) => `%${hex}`);
  return decodeURIComponent(bytes.replace(/%(?![0-9A-F]{2})/gi, '%25'));
}

/** A mail header's RFC 2047 words (B or Q) back to text. */
function decodeMimeWords(header: string): string {
  return header
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?UTF-8\?([BQ])\?([^?]*)\?=/gi, (_, kind: string, data: string) =>
      kind.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64').toString('utf8')
        : decodeQuotedPrintable(data.replaceAll('_', ' ')),
    );
}

describe('smtp against a real SMTP server on loopback', () => {
  it('sends plain (no TLS, no auth)', async () => {
    const { port, mails } = await startSmtp({ authOptional: true, disabledCommands: ['STARTTLS'] });
    const result = await sendToTarget(
      {
        alias: 'mail',
        url: `smtp://127.0.0.1:${port}/?from=backup@example.com&to=ops@example.com,dev@example.com&encryption=None`,
      },
      message,
      { retries: 0, timeoutMs: 5000 },
    );
    expect(result.error).toBeUndefined();
    expect(mails).toHaveLength(1);
    const mail = mails[0];
    expect(mail?.from).toBe('backup@example.com');
    expect(mail?.to).toEqual(['ops@example.com', 'dev@example.com']);
    expect(mail?.secure).toBe(false);
    expect(mail?.data).toMatch(/^Subject: Backup of vm1 done$/m);
    expect(mail?.data).toMatch(/^To: ops@example.com, dev@example.com$/m);
    expect(mail?.data).toContain('level incr\r\n1.2 GiB');
  });

  it('keeps a raw + in addresses and sends Polish, German, Japanese and emoji intact', async () => {
    const { port, mails } = await startSmtp({ authOptional: true, disabledCommands: ['STARTTLS'] });
    const title = 'Tytuł Größe バックアップ ✅';
    const body = 'Zażółć gęślą jaźń\nÄnderungen übernommen\n仮想マシン 💾👍🏽';
    const result = await sendToTarget(
      {
        alias: 'mail',
        url: `smtp://127.0.0.1:${port}/?from=backup+kvm@example.com&to=ops+kvm@example.com&encryption=None`,
      },
      { title, body },
      { retries: 0, timeoutMs: 5000 },
    );
    expect(result.error).toBeUndefined();
    const mail = mails[0];
    expect(mail?.from).toBe('backup+kvm@example.com');
    expect(mail?.to).toEqual(['ops+kvm@example.com']);
    const subject = /^Subject: (.*(?:\r\n[ \t].*)*)/m.exec(mail?.data ?? '')?.[1] ?? '';
    expect(decodeMimeWords(subject)).toBe(title);
    const encodedBody = (mail?.data ?? '').split('\r\n\r\n').slice(1).join('\r\n\r\n');
    const decoded = /Content-Transfer-Encoding: base64/i.test(mail?.data ?? '')
      ? Buffer.from(encodedBody, 'base64').toString('utf8')
      : decodeQuotedPrintable(encodedBody);
    expect(decoded.replaceAll('\r\n', '\n').trim()).toBe(body);
  });

  it('upgrades with STARTTLS when asked (ExplicitTLS)', async () => {
    const { port, mails } = await startSmtp({ authOptional: true, key, cert });
    const result = await sendToTarget(
      {
        alias: 'mail',
        url: `smtp://localhost:${port}/?from=backup@example.com&to=ops@example.com&encryption=ExplicitTLS&fromname=Backups`,
      },
      message,
      { retries: 0, timeoutMs: 5000, smtpCa: cert },
    );
    expect(result.error).toBeUndefined();
    expect(mails[0]?.secure).toBe(true);
    expect(mails[0]?.data).toMatch(/^From: Backups <backup@example.com>$/m);
  });

  it('refuses an untrusted certificate instead of sending in the clear', async () => {
    await startSmtp({ authOptional: true, key, cert });
    const { port } = running?.server.address() as AddressInfo;
    const result = await sendToTarget(
      {
        alias: 'mail',
        url: `smtp://localhost:${port}/?from=a@example.com&to=b@example.com&encryption=ExplicitTLS`,
      },
      message,
      { retries: 0, timeoutMs: 5000 },
    );
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/certificate/i);
  });

  it('authenticates (AUTH PLAIN over STARTTLS) and keeps the password out of errors', async () => {
    const { port, mails } = await startSmtp({
      key,
      cert,
      authMethods: ['PLAIN', 'LOGIN'],
      onAuth(auth, _session, callback) {
        if (auth.username === 'backup@example.com' && auth.password === 'S3cret-pass!')
          callback(null, { user: auth.username });
        else callback(new Error('Invalid username or password'));
      },
    });
    const url = (password: string): string =>
      `smtp://backup%40example.com:${encodeURIComponent(password)}@localhost:${port}/?from=backup@example.com&to=ops@example.com&auth=Plain`;
    const ok = await sendToTarget({ alias: 'mail', url: url('S3cret-pass!') }, message, {
      retries: 0,
      timeoutMs: 5000,
      smtpCa: cert,
    });
    expect(ok.error).toBeUndefined();
    expect(mails[0]?.user).toBe('backup@example.com');
    expect(mails[0]?.secure).toBe(true);

    const bad = await sendToTarget({ alias: 'mail', url: url('Wrong-pass-123') }, message, {
      retries: 2,
      timeoutMs: 5000,
      smtpCa: cert,
    });
    expect(bad.ok).toBe(false);
    // A 535 is final: no retry.
    expect(bad.attempts).toBe(1);
    expect(JSON.stringify(bad)).not.toContain('Wrong-pass-123');
  });
});
