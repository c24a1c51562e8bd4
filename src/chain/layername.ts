import path from 'node:path';

/** Kinds of layer this tool creates; every other name is foreign (DESIGN §2). */
export const layerKinds = ['incr', 'diff', 'maintenance'] as const;
export type LayerKind = (typeof layerKinds)[number];

const layerNamePattern = /^(.+)\.(incr|diff|maintenance)-(\d{8})-(\d{6})$/;

export interface ParsedLayerName {
  readonly stem: string;
  readonly kind: LayerKind;
  readonly time: Date;
}

/** `disk.1.qcow2` → `disk.1`: the base file name without its extension. */
export function stemOf(basePath: string): string {
  const parsed = path.parse(basePath);
  return parsed.name === '' ? parsed.base : parsed.name;
}

/** `YYYYMMDD-HHMMSS` in local time, as the original script's `date +%Y%m%d-%H%M%S`. */
export function formatStamp(time: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${time.getFullYear()}${two(time.getMonth() + 1)}${two(time.getDate())}-` +
    `${two(time.getHours())}${two(time.getMinutes())}${two(time.getSeconds())}`
  );
}

export function layerFileName(stem: string, kind: LayerKind, time: Date): string {
  return `${stem}.${kind}-${formatStamp(time)}`;
}

/** Parses a layer's file name; undefined for names this tool did not make (foreign layers, bases). */
export function parseLayerName(fileName: string): ParsedLayerName | undefined {
  const match = layerNamePattern.exec(path.basename(fileName));
  if (!match) return undefined;
  const [, stem = '', kind, date = '', clock = ''] = match;
  const [y, mo, d] = [date.slice(0, 4), date.slice(4, 6), date.slice(6, 8)].map(Number);
  const [h, mi, s] = [clock.slice(0, 2), clock.slice(2, 4), clock.slice(4, 6)].map(Number);
  const time = new Date(y ?? 0, (mo ?? 1) - 1, d ?? 1, h ?? 0, mi ?? 0, s ?? 0);
  if (Number.isNaN(time.getTime()) || formatStamp(time) !== `${date}-${clock}`) return undefined;
  return { stem, kind: kind as LayerKind, time };
}
