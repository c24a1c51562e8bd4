import { readChain, readHeader } from './imagechain.js';
import type { Runner } from './runner.js';
import { runChecked } from './runner.js';

/** One element of `qemu-img info --backing-chain --output=json`. */
export interface ImageInfo {
  readonly filename: string;
  readonly format: string;
  readonly virtualSize: number;
  readonly actualSize: number;
  readonly backingFilename: string | undefined;
}

interface RawImageInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'actual-size'?: number;
  'full-backing-filename'?: string;
  'backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific'?: { type?: string; data?: { 'data-file'?: string } };
}

/** One image's header, its backing as recorded (not opened: it may be missing or elsewhere). */
export interface LayerHeader {
  readonly filename: string;
  readonly format: string;
  readonly virtualSize: number;
  readonly backingFilename: string | undefined;
  readonly backingFormat: string | undefined;
  /** A qcow2's external data file: its guest data lives in that other file. */
  readonly dataFile: string | undefined;
}

export interface CheckResult {
  /** 0 clean, 1 check could not complete, 2 corruptions, 3 leaked clusters only (harmless). */
  readonly exitCode: number;
  readonly output: string;
}

/** `qemu-img info --backing-chain --output=json`, as the layers of a chain. */
export function chainFromJson(stdout: string): ImageInfo[] {
  const parsed = JSON.parse(stdout) as RawImageInfo | RawImageInfo[];
  return (Array.isArray(parsed) ? parsed : [parsed]).map((raw) => ({
    filename: raw.filename,
    format: raw.format,
    virtualSize: raw['virtual-size'],
    actualSize: raw['actual-size'] ?? 0,
    backingFilename: raw['full-backing-filename'] ?? raw['backing-filename'],
  }));
}

/** `qemu-img info --output=json` of one image, as its header. */
export function headerFromJson(stdout: string): LayerHeader {
  const raw = JSON.parse(stdout) as RawImageInfo;
  return {
    filename: raw.filename,
    format: raw.format,
    virtualSize: raw['virtual-size'],
    backingFilename: raw['backing-filename'],
    backingFormat: raw['backing-filename-format'],
    dataFile: raw['format-specific']?.data?.['data-file'],
  };
}

/** qemu-img -p prints `    (42.00/100%)`. */
function progressParser(onProgress: (percent: number) => void): (chunk: string) => void {
  return (chunk) => {
    for (const match of chunk.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g))
      onProgress(Math.floor(Number(match[1])));
  };
}

/** Typed access to `qemu-img`. */
export class QemuImg {
  constructor(private readonly runner: Runner) {}

  /**
   * The whole chain from `top` down to its base, top first: read in-process, or by qemu-img when
   * the chain is anything but plain (src/host/imagechain.ts), so failures are worded by qemu-img.
   * `-U` (force share) because a running QEMU holds the write lock on the active layer; reading
   * headers is safe. With `format` the top is opened as that format, never probed: a raw disk's
   * guest can write a qcow2 header into it.
   */
  async chain(top: string, format?: string): Promise<ImageInfo[]> {
    return (await readChain(top, format)) ?? this.chainByQemuImg(top, format);
  }

  private async chainByQemuImg(top: string, format: string | undefined): Promise<ImageInfo[]> {
    const formatArgs = format === undefined ? [] : ['-f', format];
    const { stdout } = await runChecked(
      this.runner,
      { argv: ['qemu-img', 'info', '--backing-chain', '--output=json', '-U', ...formatArgs, '--', top] },
      `reading the chain of ${top}`,
    );
    return chainFromJson(stdout);
  }

  /** A new qcow2 overlay on top of `backing`; the backing format is recorded so nothing is probed. */
  async createOverlay(file: string, backing: string, backingFormat: string): Promise<void> {
    await runChecked(
      this.runner,
      { argv: ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', backingFormat, '-b', backing, '--', file] },
      `creating overlay ${file}`,
    );
  }

  /** Safe rebase: `file` keeps its content while its backing becomes `base` (what a block pull does). */
  async rebase(
    file: string,
    base: string,
    baseFormat: string,
    onProgress: (percent: number) => void,
  ): Promise<void> {
    await runChecked(
      this.runner,
      {
        argv: ['qemu-img', 'rebase', '-p', '-f', 'qcow2', '-F', baseFormat, '-b', base, '--', file],
        onOutput: progressParser(onProgress),
      },
      `rebasing ${file} onto ${base}`,
    );
  }

  /** Commits `top` and every layer between it and `base` into `base`. */
  async commit(top: string, base: string, onProgress: (percent: number) => void): Promise<void> {
    await runChecked(
      this.runner,
      {
        argv: ['qemu-img', 'commit', '-p', '-f', 'qcow2', '-b', base, '--', top],
        onOutput: progressParser(onProgress),
      },
      `committing ${top} into ${base}`,
    );
  }

  /**
   * Flattens the chain below `top` into one standalone, sparse qcow2. `-U`: the chain's layers may
   * be in use by a running domain (they are frozen, so reading them is safe).
   */
  async convert(top: string, output: string, onProgress: (percent: number) => void): Promise<void> {
    await runChecked(
      this.runner,
      {
        argv: ['qemu-img', 'convert', '-U', '-p', '-O', 'qcow2', '--', top, output],
        onOutput: progressParser(onProgress),
      },
      `converting ${top} into ${output}`,
    );
  }

  /** Unsafe rebase: only rewrites which file `file` names as its backing; its data is not touched. */
  async rebaseUnsafe(file: string, backing: string, backingFormat: string): Promise<void> {
    await runChecked(
      this.runner,
      { argv: ['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-F', backingFormat, '-b', backing, '--', file] },
      `pointing ${file} at ${backing}`,
    );
  }

  /**
   * Commits `top` (and the layers between) into `base`, leaving `top` as it was (`-d`): the chain
   * above `base` reads the same data throughout, so a crash midway loses nothing.
   */
  async commitKeepingTop(top: string, base: string, onProgress: (percent: number) => void): Promise<void> {
    await runChecked(
      this.runner,
      {
        argv: ['qemu-img', 'commit', '-d', '-p', '-f', 'qcow2', '-b', base, '--', top],
        onOutput: progressParser(onProgress),
      },
      `committing ${top} into ${base}`,
    );
  }

  /**
   * The header of one image, without opening its backing file. With `format` the image is opened
   * as that format instead of probed (a file from an untrusted source must never be probed). Read
   * in-process when the image is plain, else by qemu-img (as chain()).
   */
  async header(file: string, format?: string): Promise<LayerHeader> {
    return (await readHeader(file, format)) ?? this.headerByQemuImg(file, format);
  }

  private async headerByQemuImg(file: string, format?: string): Promise<LayerHeader> {
    const { stdout } = await runChecked(
      this.runner,
      {
        argv: [
          'qemu-img',
          'info',
          '--output=json',
          '-U',
          ...(format === undefined ? [] : ['-f', format]),
          '--',
          file,
        ],
      },
      `reading the header of ${file}`,
    );
    return headerFromJson(stdout);
  }

  /** `qemu-img check`: metadata consistency of one layer (read-only; -U as QEMU may hold it open). */
  async check(file: string, format: string): Promise<CheckResult> {
    const result = await this.runner({ argv: ['qemu-img', 'check', '-U', '-f', format, '--', file] });
    return { exitCode: result.exitCode, output: `${result.stdout}${result.stderr}`.trim() };
  }
}
