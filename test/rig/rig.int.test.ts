import { waitForSeq } from './domain.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { useTestDomains } from './test-domains.js';
import { checkImage } from './image.js';
import { parseRecord, recordChecksum } from './records.js';
import { virsh } from './virsh.js';

const domains = useTestDomains();

describe('the test rig', () => {
  it('boots a two-disk guest whose writers leave clean filesystems and intact records', async () => {
    const domain = await domains.create({ disks: 2, start: false });
    await domain.start();
    console.log(`boot to guest agent: ${await domain.waitForAgent()} ms`);

    const first = await Promise.all([waitForSeq(domain, 'vda', 1), waitForSeq(domain, 'vdb', 1)]);
    await sleep(2000);
    const second = await Promise.all([domain.lastSeq('vda'), domain.lastSeq('vdb')]);
    expect(second[0]).toBeGreaterThan(first[0]);
    expect(second[1]).toBeGreaterThan(first[1]);
    console.log(`writer rate: ${(second[0] - first[0]) / 2} records/s`);

    // The checksum the guest computes is the one records.ts computes.
    const line = (await domain.guestExec(['head', '-n', '1', '/mnt/vda/records.log'])).trim();
    expect(parseRecord(line)).toMatchObject({ seq: 1 });

    await domain.writeMarker('vdb', 'before shutdown');
    await domain.shutdown();
    expect(await domain.state()).toBe('shut off');

    for (const [index, disk] of domain.disks.entries()) {
      const check = await checkImage(disk.path);
      expect(check.fsckClean, check.fsckOutput).toBe(true);
      expect(check.records.problems).toEqual([]);
      expect(check.records.ok).toBe(true);
      expect(check.records.lastSeq).toBeGreaterThanOrEqual(second[index] ?? 1);
      expect(check.records.count).toBe(check.records.lastSeq);
      expect(check.marker).toBe(disk.target === 'vdb' ? 'before shutdown' : undefined);
    }
  });

  it('continues the record sequence after a crash and restart', async () => {
    const domain = await domains.create({ disks: 1 });
    const before = await waitForSeq(domain, 'vda', 3);
    await domain.destroy();
    await domain.start();
    await domain.waitForAgent();
    await waitForSeq(domain, 'vda', before + 3);
    await domain.shutdown();
    const check = await checkImage(domain.disks[0]?.path ?? '');
    expect(check.fsckClean, check.fsckOutput).toBe(true);
    expect(check.records.problems).toEqual([]);
    expect(check.records.lastSeq).toBeGreaterThan(before + 2);
  });

  it('makes the writer drop a torn tail and continue after the last valid record', async () => {
    const domain = await domains.create({ disks: 1, writer: false });
    const torn = [1, 2, 3].map((seq) => `${seq} 1700000000 ${recordChecksum(seq, 1700000000)}\n`).join('');
    await domain.writeFile('vda', 'records.log', `${torn}4 17000\0\0\0\0`);
    await domain.guestExec(['start-stop-daemon', '-S', '-b', '-x', '/bin/writer', '--', '/mnt/vda']);
    await waitForSeq(domain, 'vda', 6);
    await domain.shutdown();
    const check = await checkImage(domain.disks[0]?.path ?? '');
    expect(check.records.problems).toEqual([]);
    expect(check.records.count).toBe(check.records.lastSeq);
  });

  it('serves a consistent frozen layer after a disk-only snapshot, quiesced or not', async () => {
    const domain = await domains.create({ disks: 2 });
    await Promise.all([waitForSeq(domain, 'vda', 5), waitForSeq(domain, 'vdb', 5)]);
    for (const quiesce of [true, false]) {
      const overlays = domain.disks.map((disk) => ({
        ...disk,
        overlay: `${disk.path}.${quiesce ? 'q' : 'c'}`,
      }));
      await virsh(
        'snapshot-create-as',
        '--domain',
        domain.name,
        '--disk-only',
        '--atomic',
        '--no-metadata',
        ...(quiesce ? ['--quiesce'] : []),
        ...overlays.flatMap((disk) => ['--diskspec', `${disk.target},file=${disk.overlay}`]),
      );
      const frozen = quiesce
        ? domain.disks.map((disk) => disk.path)
        : overlays.map((disk) => `${disk.path}.q`);
      for (const layer of frozen) {
        const check = await checkImage(layer);
        expect(check.fsckClean, check.fsckOutput).toBe(true);
        expect(check.records.problems).toEqual([]);
        expect(check.records.count).toBeGreaterThanOrEqual(5);
      }
    }
    expect(await domain.state()).toBe('running');
  });

  it('boots a domain whose name and folder hold spaces, quotes and $(…)', async () => {
    const tag = Math.random().toString(16).slice(2, 8);
    const domain = await domains.create({
      name: `ubt-${tag} it's "odd" $(touch pwned)`,
      dirName: `ubt-${tag} dir 'with' "quotes" $(x)`,
      rawDisk: true,
      cdrom: 'iso',
      writer: false,
    });
    expect(await domain.state()).toBe('running');
    expect(await domain.guestExec(['ls', '/mnt'])).toBe('vda\n');
    expect(await domain.lastSeq('vda')).toBe(0);
  });
});
