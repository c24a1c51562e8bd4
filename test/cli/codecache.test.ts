import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheFolder, cacheName, readCache, writeCache } from '../../src/cli/codecache.js';

const uid = process.geteuid?.() ?? 0;
const hash = (text: string) => createHash('sha256').update(text).digest();
const scratch = () => mkdtempSync(path.join(os.tmpdir(), 'ub-codecache-'));

describe('cacheName: one cache per verb', () => {
  it('names the verb, the original script form, help, and nothing else', () => {
    expect(cacheName(['backup', 'incr', 'vm'])).toBe('backup');
    expect(cacheName(['-c', 'qemu:///system', '--state-dir', '/x', 'status', 'all'])).toBe('status');
    expect(cacheName(['-a', 'backup', '-m', 'incr', 'vm'])).toBe('seed');
    expect(cacheName(['--help'])).toBe('help');
    expect(cacheName(['backup', '--help'])).toBe('help');
    // Never a path: anything but a known verb shares one cache.
    expect(cacheName(['../../etc/passwd'])).toBe('other');
    expect(cacheName([])).toBe('other');
  });
});

describe('cacheFolder: a folder of ours alone, or no cache', () => {
  it('makes a missing folder private', () => {
    const folder = path.join(scratch(), 'cache');
    expect(cacheFolder(folder, uid)).toBe(folder);
    expect(statSync(folder).mode & 0o777).toBe(0o700);
  });

  it('refuses a folder others may write to, a link to a folder, another owner, a file', () => {
    const dir = scratch();
    const open = path.join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(cacheFolder(open, uid)).toBeUndefined();
    const mine = path.join(dir, 'mine');
    mkdirSync(mine, { mode: 0o700 });
    symlinkSync(mine, path.join(dir, 'link'));
    expect(cacheFolder(path.join(dir, 'link'), uid)).toBeUndefined();
    expect(cacheFolder(mine, uid + 1)).toBeUndefined();
    writeFileSync(path.join(dir, 'file'), '');
    expect(cacheFolder(path.join(dir, 'file'), uid)).toBeUndefined();
  });
});

describe('readCache / writeCache', () => {
  const payload = Buffer.from('compiled code, as V8 would give it');

  it('reads back what was written for the same bundle', () => {
    const file = path.join(scratch(), 'backup.v8');
    writeCache(file, hash('bundle'), payload);
    expect(readCache(file, hash('bundle'), uid)).toEqual(payload);
    expect(readCache(file, hash('another bundle'), uid)).toBeUndefined();
    expect(readCache(file, hash('bundle'), uid + 1)).toBeUndefined();
  });

  it('ignores a missing, changed, cut, shared, linked or other-writable file', () => {
    const dir = scratch();
    const file = path.join(dir, 'backup.v8');
    expect(readCache(file, hash('bundle'), uid)).toBeUndefined();
    writeCache(file, hash('bundle'), payload);
    const good = readFileSync(file);

    const changed = Buffer.from(good);
    changed.writeUInt8(changed.readUInt8(changed.length - 1) ^ 1, changed.length - 1);
    writeFileSync(file, changed);
    expect(readCache(file, hash('bundle'), uid)).toBeUndefined();

    writeFileSync(file, good.subarray(0, good.length - 1));
    expect(readCache(file, hash('bundle'), uid)).toBeUndefined();
    writeFileSync(file, good.subarray(0, 10));
    expect(readCache(file, hash('bundle'), uid)).toBeUndefined();

    writeFileSync(file, good);
    expect(readCache(file, hash('bundle'), uid)).toEqual(payload);
    chmodSync(file, 0o666);
    expect(readCache(file, hash('bundle'), uid)).toBeUndefined();
    chmodSync(file, 0o600);

    linkSync(file, path.join(dir, 'second-name'));
    expect(readCache(file, hash('bundle'), uid)).toBeUndefined();

    const other = path.join(dir, 'status.v8');
    writeCache(other, hash('bundle'), payload);
    symlinkSync(other, path.join(dir, 'linked.v8'));
    expect(readCache(path.join(dir, 'linked.v8'), hash('bundle'), uid)).toBeUndefined();
  });

  it('leaves no file behind when the folder cannot be written', () => {
    const file = path.join(scratch(), 'missing-folder', 'backup.v8');
    writeCache(file, hash('bundle'), payload);
    expect(readCache(file, hash('bundle'), uid)).toBeUndefined();
  });
});
