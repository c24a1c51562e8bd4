import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Runner } from './runner.js';
import { runChecked } from './runner.js';

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export interface MountEntry {
  readonly mountPoint: string;
  readonly type: string;
  readonly source: string;
}

/** The mounts of this mount namespace, from /proc/self/mountinfo. */
export async function mountTable(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      // Optional fields end at ' - ', after which come the type and the source.
      const [fields = '', after = ''] = line.split(' - ');
      const [type = '', source = ''] = after.split(' ');
      return {
        mountPoint: unescapeMountPath(fields.split(' ')[4] ?? ''),
        type,
        source: unescapeMountPath(source),
      };
    });
}

/** Every mount point of this mount namespace. */
export async function mountPoints(): Promise<string[]> {
  return (await mountTable()).map((m) => m.mountPoint);
}

/** Mount points at or below `folder`, deepest first (the order to unmount them in). */
export async function mountsAtOrBelow(folder: string): Promise<string[]> {
  const prefix = `${folder.replace(/\/+$/, '')}/`;
  return (await mountPoints())
    .filter((m) => m === folder || m.startsWith(prefix))
    .sort((a, b) => b.split(path.sep).length - a.split(path.sep).length || b.length - a.length);
}

export async function mountDevice(
  runner: Runner,
  request: {
    readonly device: string;
    readonly folder: string;
    readonly type: string;
    readonly options: string;
  },
): Promise<void> {
  await runChecked(runner, {
    argv: ['mount', '-t', request.type, '-o', request.options, '--', request.device, request.folder],
  });
}

export async function mountTmpfs(
  runner: Runner,
  folder: string,
  source: string,
  options: string,
): Promise<void> {
  await runChecked(runner, { argv: ['mount', '-t', 'tmpfs', '-o', options, '--', source, folder] });
}

export async function remountReadOnly(runner: Runner, folder: string): Promise<void> {
  await runChecked(runner, { argv: ['mount', '-o', 'remount,ro', '--', folder] });
}

export async function unmount(runner: Runner, folder: string): Promise<void> {
  await runChecked(runner, { argv: ['umount', '--', folder] });
}
