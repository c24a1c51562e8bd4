import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { isQcow2Magic, parseQcow2Header } from './qcow2.js';
import type { ImageInfo, LayerHeader } from './qemuimg.js';

/**
 * Chains and headers read in-process, the way `qemu-img info` reads them, without starting it.
 * Only plain cases are read here: local regular files, qcow2 (versions 2 and 3, unencrypted) and
 * raw, formats recorded or a qcow2 magic. Anything else — a missing or unreadable file, another
 * format, a loop, a name QEMU would take for a protocol — returns undefined, and the caller runs
 * qemu-img, whose answer and error messages are the reference.
 *
 * The reads are synchronous: a few small reads of local files, where each asynchronous call costs
 * a trip through libuv's thread pool (three times the time over the 400 layers of 200 domains).
 */

/** Every header field the reader needs lies in the first cluster (64 KiB unless made otherwise). */
const headerBytes = 64 * 1024;
/**
 * What is read first: header, extensions and backing name of an image qemu-img made. A header
 * that does not parse from these is read again up to `headerBytes`: a parse that succeeds on a
 * prefix gives the same result as on the whole first cluster (every bound only widens).
 */
const firstBytes = 4 * 1024;
/** Longer chains are left to qemu-img. */
const maxLayers = 1000;

interface Image {
  readonly header: LayerHeader;
  /** Bytes allocated on disk, as `qemu-img info` counts them (the file itself, not its data file). */
  readonly actualSize: number;
  /** device:inode, to tell a loop. */
  readonly id: string;
}

/** QEMU reads `proto:rest` (a colon before any slash) as a protocol, not as a file. */
function hasProtocol(name: string): boolean {
  return /^[^/]*:/.test(name);
}

/** QEMU opens a qcow2's data file with the image: a missing one fails there. */
function isRegularFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The file's first `length` bytes (fewer when it is shorter). */
function readStart(fd: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  return buffer.subarray(0, readSync(fd, buffer, 0, length, 0));
}

function readImage(file: string, format: string | undefined): Image | undefined {
  if (hasProtocol(file)) return undefined;
  let fd;
  try {
    // O_NONBLOCK: opening a FIFO put in the file's place must not wait for a writer.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const s = fstatSync(fd);
    if (!s.isFile()) return undefined;
    const whole = Math.min(headerBytes, s.size);
    let bytes = readStart(fd, Math.min(firstBytes, whole));
    const id = `${s.dev}:${s.ino}`;
    const kind = format ?? (isQcow2Magic(bytes) ? 'qcow2' : undefined);
    if (kind === 'raw')
      return {
        header: {
          filename: file,
          format: 'raw',
          // QEMU counts whole 512-byte sectors.
          virtualSize: Math.ceil(s.size / 512) * 512,
          backingFilename: undefined,
          backingFormat: undefined,
          dataFile: undefined,
        },
        actualSize: s.blocks * 512,
        id,
      };
    if (kind !== 'qcow2') return undefined;
    let parsed = parseQcow2Header(bytes);
    if (typeof parsed === 'string' && bytes.length < whole) {
      bytes = readStart(fd, whole);
      parsed = parseQcow2Header(bytes);
    }
    if (typeof parsed === 'string') return undefined;
    // QEMU opens a relative data file name from its own working folder: not guessed here.
    if (
      parsed.dataFile !== undefined &&
      (!path.isAbsolute(parsed.dataFile) || !isRegularFile(parsed.dataFile))
    )
      return undefined;
    return { header: { filename: file, format: 'qcow2', ...parsed }, actualSize: s.blocks * 512, id };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * The file a backing name stands for, as QEMU combines them: an absolute name as it is, a relative
 * one after the last `/` of the overlay's own name (not resolved, not normalized). Undefined for a
 * protocol name.
 */
export function fullBackingName(overlay: string, backing: string): string | undefined {
  if (hasProtocol(backing)) return undefined;
  if (path.isAbsolute(backing)) return backing;
  return `${overlay.slice(0, overlay.lastIndexOf('/') + 1)}${backing}`;
}

/**
 * One image's header without opening its backing (`qemu-img info`), or undefined: ask qemu-img.
 * With `format` the image is read as that format, never probed.
 */
export function readHeader(file: string, format?: string): Promise<LayerHeader | undefined> {
  return Promise.resolve(readImage(file, format)?.header);
}

/**
 * The chain from `top` down to its base, top first (`qemu-img info --backing-chain`), or undefined.
 * With `topFormat` the top is read as that format, never probed.
 */
export function readChain(top: string, topFormat?: string): Promise<ImageInfo[] | undefined> {
  return Promise.resolve(chainOf(top, topFormat));
}

function chainOf(top: string, topFormat: string | undefined): ImageInfo[] | undefined {
  const infos: ImageInfo[] = [];
  const seen = new Set<string>();
  let file = top;
  let format = topFormat;
  for (;;) {
    const image = readImage(file, format);
    if (image === undefined || seen.has(image.id) || infos.length >= maxLayers) return undefined;
    seen.add(image.id);
    const { header } = image;
    const backing =
      header.backingFilename === undefined ? undefined : fullBackingName(file, header.backingFilename);
    if (header.backingFilename !== undefined && backing === undefined) return undefined;
    infos.push({
      filename: file,
      format: header.format,
      virtualSize: header.virtualSize,
      actualSize: image.actualSize,
      backingFilename: backing,
    });
    if (backing === undefined) return infos;
    file = backing;
    format = header.backingFormat;
  }
}
