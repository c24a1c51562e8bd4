import { describe, expect, it } from 'vitest';
import { formatStamp, layerFileName, parseLayerName, stemOf } from '../../src/chain/layername.js';

describe('layer names (seed-compatible)', () => {
  it('takes the stem from the base file name without its extension', () => {
    expect(stemOf('/vms/a/disk.1.qcow2')).toBe('disk.1');
    expect(stemOf('/vms/a/disk.img')).toBe('disk');
    expect(stemOf('/vms/a/plain')).toBe('plain');
    expect(stemOf("/vms/a/it's $(x).qcow2")).toBe("it's $(x)");
  });

  it('formats the local time as YYYYMMDD-HHMMSS', () => {
    expect(formatStamp(new Date(2026, 0, 2, 3, 4, 5))).toBe('20260102-030405');
    expect(layerFileName('disk.1', 'incr', new Date(2026, 10, 26, 14, 5, 9))).toBe(
      'disk.1.incr-20261126-140509',
    );
  });

  it('parses what it formats, for every kind', () => {
    for (const kind of ['incr', 'diff', 'maintenance'] as const) {
      const time = new Date(2026, 10, 26, 23, 59, 58);
      expect(parseLayerName(`/x/disk.1.${kind}-20261126-235958`)).toEqual({ stem: 'disk.1', kind, time });
    }
  });

  it('treats other names as foreign', () => {
    expect(parseLayerName('disk.1.qcow2')).toBeUndefined();
    expect(parseLayerName('disk.1.bimg-20261126-101010')).toBeUndefined();
    expect(parseLayerName('disk.1.incr-20261399-101010')).toBeUndefined();
    expect(parseLayerName('disk.1.incr-2026112-101010')).toBeUndefined();
  });
});
