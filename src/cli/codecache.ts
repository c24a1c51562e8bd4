import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

import { guessInvocation } from './connection.js';

// The tool is one CommonJS bundle, compiled with V8's code cache so that a run does not parse and
// compile the same megabyte of JavaScript again (src/cli/launcher.ts; nothing here loads the tool).
// The cache only ever saves time: one that is missing, not ours, not for this bundle or not for
// this node is left alone, and the bundle is compiled as it is.

/** What begins every cache file, then the bundle's and the payload's SHA-256. */
const magic = Buffer.from('unifi-backup code cache 1\n');
const header = magic.length + 64;
/** Where the caches live: a folder of their own beside restic's cache of the generated systemd units. */
const defaultCacheDir = '/var/cache/unifi-backup/code';
/** Larger files are not a cache of ours (the cache of every verb is under 2 MiB). */
const maxCacheBytes = 64 * 2 ** 20;

/** Verbs with a cache of their own: each compiles other functions, and V8 keeps only those. */
const verbs = new Set([
  ...['backup', 'chain', 'completion', 'config', 'files', 'generate', 'help', 'maintenance'],
  ...['metrics', 'mount', 'notify', 'repair', 'restore', 'run', 'schedule', 'seed', 'status'],
  ...['sync', 'unmount', 'verify'],
]);

/** The cache's name for `argv`: its verb (`seed` for the original script's form), else `other`. */
export function cacheName(argv: readonly string[]): string {
  const { verb } = guessInvocation(argv, {});
  return verb !== undefined && verbs.has(verb) ? verb : 'other';
}

/** The cache folder when it is ours alone (made if missing), else undefined: no cache. */
export function cacheFolder(folder: string, uid: number): string | undefined {
  try {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const stat = lstatSync(folder);
    return stat.isDirectory() && stat.uid === uid && (stat.mode & 0o022) === 0 ? folder : undefined;
  } catch {
    return undefined;
  }
}

/** The payload of a cache file for `sourceHash`, or undefined when the file is missing or not ours. */
export function readCache(file: string, sourceHash: Buffer, uid: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd);
    const ours = stat.isFile() && stat.uid === uid && (stat.mode & 0o022) === 0 && stat.nlink === 1;
    if (!ours || stat.size < header || stat.size > maxCacheBytes) return undefined;
    const bytes = readFileSync(fd);
    const payload = bytes.subarray(header);
    const matches =
      bytes.subarray(0, magic.length).equals(magic) &&
      bytes.subarray(magic.length, magic.length + 32).equals(sourceHash) &&
      bytes.subarray(magic.length + 32, header).equals(sha256(payload));
    return matches ? payload : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Replaces the cache file at once (a reader sees the old file or the new one, never half). */
export function writeCache(file: string, sourceHash: Buffer, payload: Buffer): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    const fd = openSync(
      temporary,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      for (const part of [magic, sourceHash, sha256(payload), payload]) writeSync(fd, part);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, file);
  } catch {
    try {
      unlinkSync(temporary);
    } catch {
      // Never made, or already renamed.
    }
  }
}

function sha256(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * Compiles and runs `bundle` as CommonJS, with the cache of this verb when there is a good one; when
 * there is none, the cache is written as the process exits (V8 has compiled what the verb ran).
 */
export function runBundle(bundle: string): void {
  const source = readFileSync(bundle);
  const uid = process.geteuid?.() ?? -1;
  const disabled = process.env.UNIFI_BACKUP_CODE_CACHE === 'off';
  const folder = disabled
    ? undefined
    : cacheFolder(process.env.UNIFI_BACKUP_CACHE_DIR ?? defaultCacheDir, uid);
  const sourceHash = sha256(source);
  const file = folder && path.join(folder, `${cacheName(process.argv.slice(2))}.v8`);
  const cachedData = file && readCache(file, sourceHash, uid);
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`,
    {
      filename: bundle,
      ...(cachedData ? { cachedData } : {}),
    },
  );
  if (file && (cachedData === undefined || script.cachedDataRejected === true))
    process.once('exit', () => {
      writeCache(file, sourceHash, script.createCachedData());
    });
  const module = { exports: {} };
  (script.runInThisContext() as (...args: unknown[]) => void)(
    module.exports,
    createRequire(bundle),
    module,
    bundle,
    path.dirname(bundle),
  );
}
