import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { readCache, writeCache } from '../../src/cli/codecache.js';
import { cliPath } from '../cli-run.js';

const bundle = path.join(path.dirname(cliPath), 'unifi-backup.cjs');
const bundleHash = () => createHash('sha256').update(readFileSync(bundle)).digest();
const uid = process.geteuid?.() ?? 0;
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** The built CLI's --version with the code cache in `folder`. */
async function versionWith(folder: string, extra: Record<string, string> = {}): Promise<void> {
  const result = await execa('node', [cliPath, '--version'], {
    env: { UNIFI_BACKUP_CACHE_DIR: folder, ...extra },
    reject: false,
    stdin: 'ignore',
  });
  expect(result.stderr).toBe('');
  expect(result.stdout).toBe(version);
  expect(result.exitCode).toBe(0);
}

describe('the code cache of the built CLI (V8 code cache, per verb)', () => {
  const scratch = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'ub-codecache-')), 'cache');

  it('is written by the first run and used, unchanged, by the next', async () => {
    const folder = scratch();
    await versionWith(folder);
    const file = path.join(folder, 'help.v8');
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readCache(file, bundleHash(), uid)?.length).toBeGreaterThan(1000);
    const first = statSync(file).ino;
    await versionWith(folder);
    // V8 took it: a rejected or unreadable cache is replaced at exit.
    expect(statSync(file).ino).toBe(first);
  });

  it('runs as if there were none when the cache is damaged, foreign or for another node, and replaces it', async () => {
    const folder = scratch();
    await versionWith(folder);
    const file = path.join(folder, 'help.v8');
    const good = readFileSync(file);
    const damaged = Buffer.from(good);
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 100) ^ 0xff, damaged.length - 100);
    const cases: [string, () => void][] = [
      [
        'a flipped byte',
        () => {
          writeFileSync(file, damaged);
        },
      ],
      [
        'half a file',
        () => {
          writeFileSync(file, good.subarray(0, good.length >> 1));
        },
      ],
      [
        'the cache of another bundle',
        () => {
          writeCache(file, createHash('sha256').update('x').digest(), good);
        },
      ],
      // Our checks pass; V8's own refuse the payload (as for another node's cache).
      [
        'a payload V8 refuses',
        () => {
          writeCache(file, bundleHash(), Buffer.alloc(4096, 7));
        },
      ],
    ];
    for (const [what, damage] of cases) {
      damage();
      const before = statSync(file).ino;
      await versionWith(folder);
      expect(statSync(file).ino, what).not.toBe(before);
      expect(readCache(file, bundleHash(), uid), what).toBeDefined();
    }
  });

  it('is left alone in a folder others may write to, and when switched off', async () => {
    const open = scratch();
    mkdirSync(open);
    chmodSync(open, 0o777);
    await versionWith(open);
    expect(existsSync(path.join(open, 'help.v8'))).toBe(false);
    const off = scratch();
    await versionWith(off, { UNIFI_BACKUP_CODE_CACHE: 'off' });
    expect(existsSync(off)).toBe(false);
  });
});
