import { UserError } from '../errors.js';
import type { Runner } from './runner.js';
import { runChecked } from './runner.js';

/** One image of a chain as qemu-storage-daemon opens it: never probed, the format always given. */
export interface ExportLayer {
  readonly file: string;
  readonly format: 'qcow2' | 'raw';
}

/**
 * The `--blockdev` of a chain, top first, every backing named explicitly (the headers' backing paths
 * are never followed) and every node read-only. `shared`: the files are a live domain's frozen
 * layers, whose QEMU holds the image locks; reading them is safe because nothing writes them.
 */
export function chainBlockdev(layers: readonly ExportLayer[], shared: boolean): Record<string, unknown> {
  const [top, ...below] = layers;
  if (top === undefined) throw new UserError('a chain without layers cannot be exported');
  const node: Record<string, unknown> = {
    driver: top.format,
    'read-only': true,
    file: { driver: 'file', filename: top.file, 'read-only': true, locking: shared ? 'off' : 'auto' },
  };
  if (top.format === 'qcow2') node.backing = below.length === 0 ? null : chainBlockdev(below, shared);
  return node;
}

/** An empty qcow2 of `size` bytes, to go above a chain so a journal replay has somewhere to write. */
export async function createScratchOverlay(runner: Runner, file: string, size: number): Promise<void> {
  await runChecked(runner, { argv: ['qemu-img', 'create', '-q', '-f', 'qcow2', '--', file, String(size)] });
}

/**
 * Exports a chain as a raw image at `exportFile` (an empty regular file) through
 * qemu-storage-daemon's FUSE export. The chain's nodes are read-only; writes (a filesystem
 * replaying its journal) go to the scratch `overlay` above them. The daemon detaches once the
 * export is up and writes its pid to `pidFile`; it ends (and unmounts the export) on SIGTERM.
 */
export async function startExport(
  runner: Runner,
  request: {
    readonly layers: readonly ExportLayer[];
    readonly shared: boolean;
    readonly overlay: string;
    readonly exportFile: string;
    readonly pidFile: string;
    readonly what: string;
  },
): Promise<void> {
  const blockdev = {
    driver: 'qcow2',
    'node-name': 'top',
    file: { driver: 'file', filename: request.overlay },
    backing: chainBlockdev(request.layers, request.shared),
  };
  const result = await runner({
    argv: [
      'qemu-storage-daemon',
      '--blockdev',
      JSON.stringify(blockdev),
      '--export',
      JSON.stringify({
        type: 'fuse',
        id: 'disk',
        'node-name': 'top',
        mountpoint: request.exportFile,
        writable: true,
      }),
      '--daemonize',
      '--pidfile',
      request.pidFile,
    ],
    timeoutMs: 60_000,
  });
  if (result.exitCode === 0) return;
  const detail = result.stderr.trim() || `exit code ${result.exitCode}`;
  if (/fuse/i.test(detail) && /not (found|supported)|no such device|fusermount/i.test(detail))
    throw new UserError(
      `cannot export ${request.what} through FUSE: ${detail}. mount needs the fuse kernel module and ` +
        `/dev/fuse (modprobe fuse; in a container, pass /dev/fuse through), and fuse3 installed.`,
    );
  throw new UserError(`qemu-storage-daemon could not open ${request.what}: ${detail}`);
}
