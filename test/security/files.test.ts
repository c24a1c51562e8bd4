import { mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { holdsSecrets, loadConfig } from '../../src/config/config.js';
import { Journal, journalFile, readJournal } from '../../src/journal/journal.js';
import { lockDomain, lockFile } from '../../src/lock/lock.js';
import type { Plan } from '../../src/chain/plan.js';

const plan: Plan = { domain: 'vm1', verb: 'backup incr', steps: [], tops: new Map(), notes: [] };
const scratch = () => mkdtempSync(path.join(os.tmpdir(), 'ub-sec-'));

describe('state, journal and lock folders', () => {
  it('are created 0700 and owned by the user running the tool', async () => {
    const dir = scratch();
    const stateDir = path.join(dir, 'state');
    const lockDir = path.join(dir, 'lock');
    Journal.begin(stateDir, plan).finish();
    (await lockDomain(lockDir, 'vm1', 'test')).release();
    for (const folder of [stateDir, path.join(stateDir, 'journal'), lockDir]) {
      const st = statSync(folder);
      expect((st.mode & 0o777).toString(8), folder).toBe('700');
      expect(st.uid, folder).toBe(process.getuid?.());
    }
    expect((statSync(lockFile(lockDir, 'vm1')).mode & 0o777).toString(8)).toBe('600');
  });
});

describe('a symlink planted at the journal or lock path', () => {
  it('is refused and its target is untouched', async () => {
    const dir = scratch();
    const target = path.join(dir, 'precious');
    writeFileSync(target, 'precious\n');
    const stateDir = path.join(dir, 'state');
    Journal.begin(stateDir, plan).finish();
    symlinkSync(target, journalFile(stateDir, 'vm1'));
    expect(() => Journal.begin(stateDir, plan)).toThrow(/is a symbolic link; refusing to follow it/);
    expect(() => readJournal(stateDir, 'vm1')).toThrow(/is a symbolic link; refusing to follow it/);

    const lockDir = path.join(dir, 'lock');
    (await lockDomain(lockDir, 'vm1', 'test')).release();
    const lock = lockFile(lockDir, 'vm2');
    symlinkSync(target, lock);
    await expect(lockDomain(lockDir, 'vm2', 'test')).rejects.toThrow(
      `${lock} is a symbolic link; refusing to follow it, so domain 'vm2' was not touched`,
    );
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
  });
});

describe('a config file holding secrets', () => {
  it('warns when anyone may read it, and not when it is private or holds none', async () => {
    const dir = scratch();
    const write = (name: string, text: string, mode: number) => {
      const file = path.join(dir, name);
      writeFileSync(file, text, { mode });
      return file;
    };
    const secret = 'restic:\n  repository: /srv/r\n  env:\n    AWS_SECRET_ACCESS_KEY: s3cr3t-Key\n';
    const warnings: string[] = [];
    const warn = (line: string) => warnings.push(line);
    await loadConfig(write('open.yaml', secret, 0o644), warn);
    expect(warnings).toEqual([
      expect.stringMatching(/open\.yaml holds secrets and is readable by every user \(mode 644\).*chmod 600/),
    ]);
    expect(warnings.join('')).not.toContain('s3cr3t-Key');
    await loadConfig(write('private.yaml', secret, 0o600), warn);
    await loadConfig(
      write('plain.yaml', 'restic:\n  repository: /srv/r\n  password-file: /etc/pw\n', 0o644),
      warn,
    );
    expect(warnings).toHaveLength(1);
  });

  it('is recognised by its restic env, credentials in URLs and secret-named keys', () => {
    expect(holdsSecrets({ restic: { env: { B2_ACCOUNT_KEY: 'x' } } })).toBe(true);
    expect(holdsSecrets({ restic: { repository: 'rest:https://u:pw@host/' } })).toBe(true);
    expect(holdsSecrets({ notify: { urls: ['gotify://host/tok?x=1', 'ntfy://a:b@host/t'] } })).toBe(true);
    expect(holdsSecrets({ notify: { token: 'abc' } })).toBe(true);
    expect(holdsSecrets({ restic: { repository: 'sftp:u@host:/srv', 'password-file': '/etc/p' } })).toBe(
      false,
    );
  });
});
