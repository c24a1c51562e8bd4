import { mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeStateFile } from '../../src/state/write.js';

const scratch = () => mkdtempSync(path.join(os.tmpdir(), 'ub-write-'));

describe('writeStateFile', () => {
  it('replaces the whole file, private (0600) whatever the umask, and leaves no temporary file', () => {
    const dir = scratch();
    const file = path.join(dir, 'vm.json');
    writeFileSync(file, 'old', { mode: 0o644 });
    const umask = process.umask(0);
    try {
      writeStateFile(file, '{"new":true}\n');
    } finally {
      process.umask(umask);
    }
    expect(readFileSync(file, 'utf8')).toBe('{"new":true}\n');
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    expect(readdirSync(dir)).toEqual(['vm.json']);
  });

  it('refuses a symbolic link at the path and leaves its target as it was', () => {
    const dir = scratch();
    const target = path.join(dir, 'precious');
    writeFileSync(target, 'precious\n');
    const file = path.join(dir, 'vm.xml');
    symlinkSync(target, file);
    expect(() => {
      writeStateFile(file, 'x');
    }).toThrow(`${file} is a symbolic link; refusing to follow it. Nothing was changed.`);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect(readdirSync(dir).sort()).toEqual(['precious', 'vm.xml']);
  });

  it('is not redirected by links planted at the old predictable temporary names', () => {
    const dir = scratch();
    const target = path.join(dir, 'precious');
    writeFileSync(target, 'precious\n');
    const file = path.join(dir, 'vm.json');
    for (const name of [`${file}.tmp`, `${file}.${process.pid}.tmp`, path.join(dir, '.ub-tmp.vm.json')])
      symlinkSync(target, name);
    writeStateFile(file, 'new');
    expect(readFileSync(file, 'utf8')).toBe('new');
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
  });
});
