import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, validateConfig } from '../../src/config/config.js';
import { resticSettings, retentionRules } from '../../src/config/restic.js';
import { UsageError } from '../../src/errors.js';

describe('config.yaml', () => {
  it('reports every problem as a path: message line', () => {
    let error: unknown;
    try {
      validateConfig('c.yaml', {
        restic: { repository: '', passwrd: 'x', options: ['no-equals'] },
        retention: { 'keep-last': 0, 'keep-within': 'soon' },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('restic.repository: empty');
    expect(problems).toContain('restic: Unrecognized key: "passwrd"');
    expect(problems).toContain('restic.options.0: KEY=VALUE');
    expect(problems).toContain('retention.keep-last: at least 1');
    expect(problems).toContain('retention.keep-within: a duration');
  });

  it('lets other verbs’ sections through', () => {
    expect(validateConfig('c.yaml', { maintenance: { window: 'x' } })).toEqual({
      maintenance: { window: 'x' },
    });
  });

  it('treats a missing default file as empty, a missing --config file as a usage error', async () => {
    await expect(loadConfig('/nonexistent/unifi.yaml', () => undefined)).rejects.toThrow(/no such file/);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-config-'));
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, 'restic:\n  repository: /srv/restic\nretention:\n  keep-last: 7\n  prune: true\n');
    const { config } = await loadConfig(file, () => undefined);
    expect(retentionRules(config)).toEqual({ keepLast: 7 });
    expect(retentionRules({})).toBeUndefined();
  });

  it('takes the repository from the file first, then from restic’s environment', () => {
    const settings = resticSettings(
      { restic: { repository: '/srv/r', 'password-file': '/etc/pw', host: 'h1' } },
      'c.yaml',
      { RESTIC_REPOSITORY: '/other' },
    );
    expect(settings).toMatchObject({
      repository: '/srv/r',
      passwordFile: '/etc/pw',
      host: 'h1',
      options: [],
    });
    expect(resticSettings({}, 'c.yaml', { RESTIC_REPOSITORY: '/env', RESTIC_PASSWORD: 'x' }).repository).toBe(
      '/env',
    );
    expect(() => resticSettings({}, 'c.yaml', {})).toThrow(UsageError);
    expect(() => resticSettings({}, 'c.yaml', { RESTIC_REPOSITORY: '/env' })).toThrow(/no password/);
  });
});
