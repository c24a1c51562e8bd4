import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileId, lookUp } from '../../src/host/fileid.js';

describe('fileId and lookUp', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-fileid-'));
  mkdirSync(path.join(dir, 'vms'));
  mkdirSync(path.join(dir, 'clone'));
  writeFileSync(path.join(dir, 'vms', 'disk.1.qcow2'), 'x');
  symlinkSync(path.join(dir, 'vms'), path.join(dir, 'link'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives one identity to every path of a file: symlinked folder, `..`, and the plain path', async () => {
    const plain = await fileId(path.join(dir, 'vms', 'disk.1.qcow2'));
    expect(plain).toBeDefined();
    expect(await fileId(`${dir}/clone/../link/disk.1.qcow2`)).toBe(plain);
    expect(await fileId(path.join(dir, 'vms', 'disk.2.qcow2'))).toBeUndefined();
  });

  it('tells a missing file in an existing folder (absent) from a missing folder (unknown)', async () => {
    expect(await lookUp(path.join(dir, 'vms', 'gone.qcow2'))).toBe('absent');
    expect(await lookUp(path.join(dir, 'unmounted', 'disk.qcow2'))).toBeUndefined();
  });

  it('gives a block device one identity through any of its names: its device number', async () => {
    const link = path.join(dir, 'vg0-data');
    symlinkSync('/dev/loop0', link);
    const id = await fileId(link);
    expect(id).toMatch(/^block:\d+$/);
    expect(await fileId('/dev/loop0')).toBe(id);
  });
});
