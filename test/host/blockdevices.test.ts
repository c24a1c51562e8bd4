import { describe, expect, it } from 'vitest';
import { loopsOver, probeRegion, readPartitions } from '../../src/host/blockdevices.js';
import { chainBlockdev } from '../../src/host/blockexport.js';
import type { ProgramResult, Runner } from '../../src/host/runner.js';

const reply =
  (result: Partial<ProgramResult>): Runner =>
  (request) =>
    Promise.resolve({ argv: request.argv, exitCode: 0, stdout: '', stderr: '', ...result });

const table = (partitions: object[]) =>
  JSON.stringify({ partitiontable: { label: 'dos', sectorsize: 512, partitions } });

describe('readPartitions', () => {
  it('reads offsets and sizes in bytes, numbered from the node name', async () => {
    const runner = reply({
      stdout: table([
        { node: '/x/disk1', start: 2048, size: 4096, type: '83' },
        { node: '/x/disk2', start: 8192, size: 2048, type: '83' },
      ]),
    });
    expect(await readPartitions(runner, '/x/disk', 64 << 20, 'disk vda')).toEqual([
      { number: 1, offset: 1048576, size: 2097152 },
      { number: 2, offset: 4194304, size: 1048576 },
    ]);
  });

  it('is undefined for a disk without a partition table', async () => {
    expect(await readPartitions(reply({ exitCode: 1 }), '/x/disk', 1 << 20, 'disk vda')).toBeUndefined();
  });

  it('refuses a partition outside the disk', async () => {
    const runner = reply({ stdout: table([{ node: '/x/disk1', start: 2048, size: 1 << 30 }]) });
    await expect(readPartitions(runner, '/x/disk', 64 << 20, 'disk vda of web1')).rejects.toThrow(
      /partition table of disk vda of web1 has an entry \/x\/disk1 .* not inside the 67108864-byte disk/,
    );
  });
});

describe('probeRegion', () => {
  it('reads TYPE and LABEL; nothing found is an empty result', async () => {
    expect(
      await probeRegion(reply({ stdout: 'UUID=1\nLABEL=root fs\nTYPE=ext4\nUSAGE=filesystem\n' }), 'f', {
        offset: 0,
        size: 1,
      }),
    ).toEqual({
      type: 'ext4',
      label: 'root fs',
      usage: 'filesystem',
    });
    expect(await probeRegion(reply({ exitCode: 2 }), 'f', { offset: 0, size: 1 })).toEqual({});
  });
});

describe('loopsOver', () => {
  it('finds the loop devices over one file, a deleted one too', async () => {
    const stdout = JSON.stringify({
      loopdevices: [
        { name: '/dev/loop0', 'back-file': '/s/mounts/a/disk' },
        { name: '/dev/loop1', 'back-file': '/s/mounts/a/disk (deleted)' },
        { name: '/dev/loop2', 'back-file': '/s/mounts/b/disk' },
        { name: '/dev/loop3', 'back-file': null },
      ],
    });
    expect(await loopsOver(reply({ stdout }), '/s/mounts/a/disk')).toEqual(['/dev/loop0', '/dev/loop1']);
  });
});

describe('chainBlockdev', () => {
  it('names every backing explicitly, read-only, and turns locking off only for a live domain', () => {
    const layers = [
      { file: '/vm/vda.incr-2', format: 'qcow2' as const },
      { file: '/vm/vda.qcow2', format: 'qcow2' as const },
    ];
    expect(chainBlockdev(layers, false)).toEqual({
      driver: 'qcow2',
      'read-only': true,
      file: { driver: 'file', filename: '/vm/vda.incr-2', 'read-only': true, locking: 'auto' },
      backing: {
        driver: 'qcow2',
        'read-only': true,
        file: { driver: 'file', filename: '/vm/vda.qcow2', 'read-only': true, locking: 'auto' },
        backing: null,
      },
    });
    expect(JSON.stringify(chainBlockdev(layers, true))).not.toContain('auto');
  });
});
