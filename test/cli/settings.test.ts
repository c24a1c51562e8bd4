import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configureLog } from '../../src/cli/log.js';
import { repository } from '../../src/cli/repository.js';
import { loadConfigOnce } from '../../src/cli/settings.js';
import { programRunner } from '../../src/host/runner.js';

afterEach(() => {
  vi.restoreAllMocks();
  configureLog(undefined);
});

describe('the config file', () => {
  it('is read once per invocation; its warning goes through the logger (JSON) once', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-settings-'));
    const file = path.join(dir, 'open.yaml');
    writeFileSync(
      file,
      'restic:\n  repository: /srv/r\n  password-file: /etc/pw\n  env:\n    AWS_SECRET_ACCESS_KEY: s3cr3t-Key\n',
      {
        mode: 0o644,
      },
    );
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    configureLog('json');
    // The preAction hook reads it, then a verb that needs the repository (run, verify, restore).
    await loadConfigOnce(file);
    const { settings } = await repository(file, programRunner);
    expect(settings.repository).toBe('/srv/r');
    const lines = written
      .join('')
      .split('\n')
      .filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'warning',
      message: expect.stringMatching(/open\.yaml holds secrets and is readable by every user/) as unknown,
    });
  });
});
