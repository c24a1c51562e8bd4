import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  mountsFolder,
  newMountId,
  readMountRecords,
  removeMountRecord,
  writeMountRecord,
} from '../../src/ops/mount-record.js';

const stateDir = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'ub-mounts-')), 'state');

describe('mount records', () => {
  it('are written privately, read back and removed', () => {
    const dir = stateDir();
    expect(readMountRecords(dir)).toEqual([]);
    const record = {
      id: newMountId(),
      domain: 'web 1',
      disk: 'vda',
      mountpoint: '/mnt/x',
      pid: 42,
      complete: false,
    };
    writeMountRecord(dir, record);
    expect(readMountRecords(dir)).toEqual([record]);
    removeMountRecord(dir, record.id);
    expect(readMountRecords(dir)).toEqual([]);
  });

  it('refuse a record that is not one of ours, naming it and what to do', () => {
    const dir = stateDir();
    writeMountRecord(dir, { id: newMountId(), domain: 'a', disk: 'vda', pid: 1, complete: true });
    const id = '0123456789abcdef';
    writeFileSync(path.join(mountsFolder(dir), `${id}.json`), JSON.stringify({ id, mountpoint: 'relative' }));
    expect(() => readMountRecords(dir)).toThrow(
      /mount record .*0123456789abcdef\.json is not one .*\(umount, losetup -d/,
    );
  });
});
