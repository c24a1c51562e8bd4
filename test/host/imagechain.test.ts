import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readChain, readHeader } from '../../src/host/imagechain.js';
import { parseQcow2Header } from '../../src/host/qcow2.js';
import type { ImageInfo, LayerHeader } from '../../src/host/qemuimg.js';
import { chainFromJson, headerFromJson, QemuImg } from '../../src/host/qemuimg.js';
import { programRunner, ProcessError } from '../../src/host/runner.js';

/**
 * The in-process reader against `qemu-img info` itself, on chains made by qemu-img: whatever the
 * reader answers must be what qemu-img answers, and where it declines, qemu-img is asked.
 */
const root = mkdtempSync(path.join(os.tmpdir(), 'ub-imagechain-'));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}

function create(file: string, backing?: { file: string; format: string }, size = '16M'): string {
  mkdirSync(path.dirname(file), { recursive: true });
  qemuImg(
    'create',
    '-q',
    '-f',
    'qcow2',
    ...(backing ? ['-F', backing.format, '-b', backing.file] : []),
    '--',
    file,
    ...(backing ? [] : [size]),
  );
  return file;
}

function referenceChain(top: string): ImageInfo[] {
  return chainFromJson(qemuImg('info', '--backing-chain', '-U', '--output=json', '--', top));
}

function referenceHeader(file: string, format?: string): LayerHeader {
  return headerFromJson(
    qemuImg('info', '-U', '--output=json', ...(format ? ['-f', format] : []), '--', file),
  );
}

/** The reader must answer (not decline) and agree with qemu-img. */
async function expectSameChain(top: string): Promise<ImageInfo[]> {
  const ours = await readChain(top);
  expect(ours).toEqual(referenceChain(top));
  return ours ?? [];
}

// qemu-img runs take seconds on a busy machine.
describe('readChain agrees with qemu-img info --backing-chain', { timeout: 60_000 }, () => {
  it('reads an absolute chain of three qcow2 layers, top first', async () => {
    const dir = path.join(root, 'absolute');
    const base = create(path.join(dir, 'disk.qcow2'));
    const mid = create(path.join(dir, 'disk.incr-20260101-000000'), { file: base, format: 'qcow2' });
    const top = create(path.join(dir, 'disk.incr-20260102-000000'), { file: mid, format: 'qcow2' });
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 7 0 1M', top]);
    const chain = await expectSameChain(top);
    expect(chain.map((l) => l.filename)).toEqual([top, mid, base]);
  });

  it('combines relative backing names with the overlay’s folder, without normalizing', async () => {
    const dir = path.join(root, 'relative');
    create(path.join(dir, 'images', 'base.qcow2'));
    const mid = path.join(dir, 'layers', 'mid.qcow2');
    mkdirSync(path.dirname(mid), { recursive: true });
    qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', '../images/base.qcow2', mid);
    qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'mid.qcow2', path.join(dir, 'layers', 'top'));
    await expectSameChain(path.join(dir, 'layers', 'top'));
    await expectSameChain(`${dir}/./layers//top`);
  });

  it('reads a raw base (no header) of an odd size as whole sectors', async () => {
    const dir = path.join(root, 'raw');
    mkdirSync(dir);
    const base = path.join(dir, 'base.img');
    writeFileSync(base, Buffer.alloc(1_000_001, 1));
    const top = create(path.join(dir, 'top.qcow2'), { file: base, format: 'raw' });
    const chain = await expectSameChain(top);
    expect(chain.at(-1)).toMatchObject({ format: 'raw', virtualSize: 1_000_448, backingFilename: undefined });
  });

  it('reads names with spaces, quotes, dollars, leading dashes and non-ASCII letters', async () => {
    const dir = path.join(root, `odd 'dir' $(x)`);
    const base = create(path.join(dir, `-base "ü" ;.qcow2`));
    const top = create(path.join(dir, `-top\tß.incr-20260101-000000`), { file: base, format: 'qcow2' });
    await expectSameChain(top);
  });

  it('resolves a relative name behind a symlinked backing file from the link’s folder, as QEMU does', async () => {
    const dir = path.join(root, 'symlink');
    const real = create(path.join(dir, 'store', 'base.qcow2'));
    symlinkSync(real, path.join(dir, 'link.qcow2'));
    const top = path.join(dir, 'top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'link.qcow2', top);
    const chain = await expectSameChain(top);
    expect(chain[1]?.filename).toBe(path.join(dir, 'link.qcow2'));
  });

  it('reads a qcow2 with an external data file; a chain whose data file is missing is left to qemu-img', async () => {
    const dir = path.join(root, 'datafile');
    mkdirSync(dir);
    const data = path.join(dir, 'base.data');
    const base = path.join(dir, 'base.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${data}`, base, '16M');
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 3 0 2M', base]);
    const top = create(path.join(dir, 'top.qcow2'), { file: base, format: 'qcow2' });
    await expectSameChain(top);
    expect(await readHeader(base)).toEqual(referenceHeader(base));
    expect((await readHeader(base))?.dataFile).toBe(data);
    rmSync(data);
    expect(await readChain(top)).toBeUndefined();
    expect(await new QemuImg(programRunner).chain(top)).toEqual(referenceChain(top));
  });

  it('reads a backing name stored past the first 4 KiB of the first cluster', async () => {
    const dir = path.join(root, 'far');
    const base = create(path.join(dir, 'base.qcow2'));
    const top = create(path.join(dir, 'top.qcow2'), { file: base, format: 'qcow2' });
    const bytes = readFileSync(top);
    const name = bytes.subarray(
      Number(bytes.readBigUInt64BE(8)),
      Number(bytes.readBigUInt64BE(8)) + bytes.readUInt32BE(16),
    );
    name.copy(bytes, 8192);
    bytes.writeBigUInt64BE(8192n, 8);
    writeFileSync(top, bytes);
    expect((await expectSameChain(top)).map((l) => l.filename)).toEqual([top, base]);
    expect(await readHeader(top)).toEqual(referenceHeader(top));
  });

  it('reads version 2 (compat 0.10) images', async () => {
    const dir = path.join(root, 'v2');
    mkdirSync(dir);
    const base = path.join(dir, 'base.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', base, '32M');
    const top = path.join(dir, 'top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', '-F', 'qcow2', '-b', base, top);
    await expectSameChain(top);
  });
});

describe('what the reader leaves to qemu-img', { timeout: 60_000 }, () => {
  const qemu = new QemuImg(programRunner);

  it('a missing backing file: qemu-img fails and names it', async () => {
    const dir = path.join(root, 'missing');
    const base = create(path.join(dir, 'base.qcow2'));
    const top = create(path.join(dir, 'top.qcow2'), { file: base, format: 'qcow2' });
    rmSync(base);
    expect(await readChain(top)).toBeUndefined();
    const failure = qemu.chain(top);
    await expect(failure).rejects.toBeInstanceOf(ProcessError);
    await expect(failure).rejects.toThrow(base);
    // The header alone does not open the backing file.
    expect(await readHeader(top)).toEqual(referenceHeader(top));
  });

  it('a chain that loops: qemu-img refuses it', async () => {
    const dir = path.join(root, 'loop');
    const a = create(path.join(dir, 'a.qcow2'));
    const b = create(path.join(dir, 'b.qcow2'), { file: a, format: 'qcow2' });
    qemuImg('rebase', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', b, a);
    expect(await readChain(b)).toBeUndefined();
    await expect(qemu.chain(b)).rejects.toBeInstanceOf(ProcessError);
  });

  it('a FIFO in a layer’s place is not waited on', async () => {
    const dir = path.join(root, 'fifo');
    mkdirSync(dir);
    const fifo = path.join(dir, 'base.qcow2');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expect(await readChain(fifo)).toBeUndefined();
  });

  it('a raw top whose format is not given is probed by qemu-img, and read here when it is given', async () => {
    const dir = path.join(root, 'rawtop');
    mkdirSync(dir);
    const file = path.join(dir, 'disk.img');
    writeFileSync(file, Buffer.alloc(65536));
    expect(await readChain(file)).toBeUndefined();
    expect(await qemu.chain(file)).toEqual(referenceChain(file));
    expect(await readHeader(file, 'raw')).toEqual(referenceHeader(file, 'raw'));
  });

  it('a raw disk holding a planted qcow2 header stays raw when its format is given', async () => {
    const dir = path.join(root, 'planted');
    mkdirSync(dir);
    // What a guest could write into its raw disk: a qcow2 header whose backing is a host file.
    const planted = create(path.join(dir, 'planted.qcow2'), { file: '/etc/hostname', format: 'raw' });
    const disk = path.join(dir, 'disk.img');
    writeFileSync(disk, readFileSync(planted));
    const reference = chainFromJson(
      qemuImg('info', '--backing-chain', '-U', '--output=json', '-f', 'raw', '--', disk),
    );
    expect(await readChain(disk, 'raw')).toEqual(reference);
    expect(await qemu.chain(disk, 'raw')).toEqual(reference);
    expect(reference.map((i) => i.filename)).toEqual([disk]);
  });

  it('a qcow2 read as the raw format it is recorded as is raw, as QEMU opens it', async () => {
    const dir = path.join(root, 'asraw');
    const base = create(path.join(dir, 'base.qcow2'));
    const top = create(path.join(dir, 'top.qcow2'), { file: base, format: 'raw' });
    await expectSameChain(top);
  });
});

describe('parseQcow2Header declines what it does not fully understand', () => {
  const image = create(path.join(root, 'parse', 'base.qcow2'));
  qemuImg('rebase', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', '/nonexistent/b.qcow2', image);
  const bytes = () => Buffer.from(readFileSync(image));

  it('reads the fields of a plain header', () => {
    expect(parseQcow2Header(bytes())).toEqual({
      virtualSize: 16 * 2 ** 20,
      backingFilename: '/nonexistent/b.qcow2',
      backingFormat: 'qcow2',
      dataFile: undefined,
    });
  });

  it.each([
    ['a truncated header', (b: Buffer) => b.subarray(0, 50)],
    ['another magic', (b: Buffer) => (b.writeUInt32BE(0x514649fc, 0), b)],
    ['qcow version 1', (b: Buffer) => (b.writeUInt32BE(1, 4), b)],
    ['encryption', (b: Buffer) => (b.writeUInt32BE(1, 32), b)],
    ['an unknown incompatible feature', (b: Buffer) => (b.writeBigUInt64BE(1n << 40n, 72), b)],
    ['the corrupt bit', (b: Buffer) => (b.writeBigUInt64BE(2n, 72), b)],
    ['a data file bit without a name', (b: Buffer) => (b.writeBigUInt64BE(4n, 72), b)],
    ['a backing name beyond the bytes read', (b: Buffer) => (b.writeBigUInt64BE(1n << 20n, 8), b)],
    ['a backing name over 1023 bytes', (b: Buffer) => (b.writeUInt32BE(1024, 16), b)],
    ['a size not in whole sectors', (b: Buffer) => (b.writeBigUInt64BE(1000n, 24), b)],
    ['a size past 2^53', (b: Buffer) => (b.writeBigUInt64BE(1n << 60n, 24), b)],
    [
      'an extension running past the cluster',
      (b: Buffer) => (b.writeUInt32BE(0xfffff, b.readUInt32BE(100) + 4), b),
    ],
  ])('%s', (_what, damage) => {
    expect(typeof parseQcow2Header(damage(bytes()))).toBe('string');
  });
});
