/**
 * The fields of a qcow2 header that describe a chain (docs/interop/qcow2.txt in QEMU's sources),
 * parsed from the first bytes of the file. No I/O. Anything this parser does not fully understand
 * makes it return a reason instead of a header: the caller then asks qemu-img, which decides (and
 * words any error) exactly as before.
 */
export interface Qcow2Header {
  readonly virtualSize: number;
  readonly backingFilename: string | undefined;
  readonly backingFormat: string | undefined;
  readonly dataFile: string | undefined;
}

/** `QFI\xfb`: the magic of qcow (version 1) and qcow2 (versions 2 and 3). */
const magic = 0x514649fb;
const extensionBackingFormat = 0xe2792aca;
const extensionDataFile = 0x44415441;
/**
 * dirty, corrupt, external data file, compression type, extended L2: the bits QEMU 7 knows. A dirty
 * image (lazy refcounts) has the same header fields as a clean one.
 */
const incompatibleCorrupt = 2n;
const incompatibleDataFile = 4n;
const incompatibleKnown = 0x1fn;
/** QEMU refuses longer backing file names. */
const maxBackingName = 1023;

export function isQcow2Magic(bytes: Buffer): boolean {
  return bytes.length >= 4 && bytes.readUInt32BE(0) === magic;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A file name stored in the header, or undefined when QEMU would not read it as this one string. */
function storedName(bytes: Buffer, offset: number, length: number): string | undefined {
  if (offset + length > bytes.length || length === 0) return undefined;
  const raw = bytes.subarray(offset, offset + length);
  if (raw.includes(0)) return undefined;
  try {
    return utf8.decode(raw);
  } catch {
    return undefined;
  }
}

/**
 * The chain fields of a qcow2 header, from `bytes` (the file's first bytes, at least its first
 * cluster or the whole file), or the reason it is left to qemu-img.
 */
export function parseQcow2Header(bytes: Buffer): Qcow2Header | string {
  if (bytes.length < 72 || !isQcow2Magic(bytes)) return 'not a qcow2 header';
  const version = bytes.readUInt32BE(4);
  if (version !== 2 && version !== 3) return `qcow2 version ${version}`;
  const backingOffset = bytes.readBigUInt64BE(8);
  const backingLength = bytes.readUInt32BE(16);
  const clusterBits = bytes.readUInt32BE(20);
  const size = bytes.readBigUInt64BE(24);
  if (clusterBits < 9 || clusterBits > 21) return `cluster bits ${clusterBits}`;
  if (size > BigInt(Number.MAX_SAFE_INTEGER) || size % 512n !== 0n) return `virtual size ${size}`;
  if (bytes.readUInt32BE(32) !== 0) return 'encrypted';
  let incompatible = 0n;
  let headerLength = 72;
  if (version === 3) {
    if (bytes.length < 104) return 'short version 3 header';
    incompatible = bytes.readBigUInt64BE(72);
    headerLength = bytes.readUInt32BE(100);
    if (headerLength < 104 || headerLength % 8 !== 0) return `header length ${headerLength}`;
  }
  if ((incompatible & ~incompatibleKnown) !== 0n) return 'unknown incompatible features';
  if ((incompatible & incompatibleCorrupt) !== 0n) return 'marked corrupt';

  let backingFormat: string | undefined;
  let dataFile: string | undefined;
  const clusterEnd = Math.min(bytes.length, 2 ** clusterBits);
  // QEMU reads extensions up to the backing file name, or to the end of the first cluster.
  const extensionsEnd = backingOffset === 0n ? clusterEnd : Math.min(clusterEnd, Number(backingOffset));
  for (let at = headerLength; ;) {
    if (at + 8 > extensionsEnd) return 'header extensions run past their end';
    const type = bytes.readUInt32BE(at);
    const length = bytes.readUInt32BE(at + 4);
    if (type === 0) break;
    if (at + 8 + length > extensionsEnd) return 'header extension runs past its end';
    if (type === extensionBackingFormat || type === extensionDataFile) {
      const name = storedName(bytes, at + 8, length);
      if (name === undefined) return 'unreadable header extension';
      if (type === extensionBackingFormat) backingFormat = name;
      else dataFile = name;
    }
    at += 8 + Math.ceil(length / 8) * 8;
  }
  if (((incompatible & incompatibleDataFile) !== 0n) !== (dataFile !== undefined))
    return 'external data file flag and name disagree';

  let backingFilename: string | undefined;
  if (backingOffset !== 0n) {
    if (backingLength > maxBackingName) return 'backing file name too long';
    if (backingOffset + BigInt(backingLength) > BigInt(clusterEnd)) return 'backing file name out of reach';
    backingFilename = storedName(bytes, Number(backingOffset), backingLength);
    if (backingFilename === undefined) return 'unreadable backing file name';
  }
  return { virtualSize: Number(size), backingFilename, backingFormat, dataFile };
}
