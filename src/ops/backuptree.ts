import { constants } from 'node:fs';
import { chmod, chown, copyFile, lstat, open, readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { Restic, ResticLsEntry, ResticSnapshot } from '../host/restic.js';

/**
 * A backup as restore reads it — a restic snapshot's tree or a folder — with its paths in its own
 * namespace (a snapshot's tree paths are not the host's paths). Nothing in it is trusted: each
 * file is fetched into a private staging folder and checked there before it is placed.
 */
export interface BackupTree {
  /** What the backup is, for messages: `restic snapshot 1a2b3c4d of host web1`, `folder /srv/web1`. */
  readonly what: string;
  readonly snapshot?: string;
  /** Tree path → node type (`file`, `dir`, `symlink`, `dev`, …). */
  readonly types: ReadonlyMap<string, string>;
  /** Fetches regular files; returns each one's local path (in `staging`, or in place for a folder restored in place). */
  fetch(paths: readonly string[], staging: string): Promise<Map<string, string>>;
}

/** The restic snapshot to restore: the one named, or the domain's latest made by `host`. */
export function chooseSnapshot(
  snapshots: readonly ResticSnapshot[],
  want: { readonly domain: string; readonly host: string; readonly id?: string; readonly repository: string },
): ResticSnapshot {
  const { domain, host, id, repository } = want;
  if (id !== undefined) {
    const named = snapshots.find((s) => s.id.startsWith(id) || s.shortId === id);
    if (named === undefined)
      throw new UserError(`no restic snapshot ${id} in ${repository}. List them with: restic snapshots`);
    if (named.hostname !== host)
      throw new UserError(
        `restic snapshot ${named.shortId} was made by host '${named.hostname}', not '${host}'. Nothing was ` +
          `restored. Restore another host's snapshot only on purpose: --host '${named.hostname}' --to DIR.`,
      );
    return named;
  }
  const latest = snapshots.filter((s) => s.hostname === host).at(-1);
  if (latest !== undefined) return latest;
  const others = [...new Set(snapshots.map((s) => s.hostname))];
  throw new UserError(
    `no restic snapshot of domain '${domain}' from host '${host}' in ${repository}.` +
      (others.length === 0
        ? ` List them with: restic snapshots --tag '${domain}'`
        : ` Hosts with snapshots of it: ${others.map((h) => `'${h}'`).join(', ')}; restore one of theirs ` +
          `with --host NAME --to DIR.`),
  );
}

/** The tree path of `<domain>-inactive.xml`: exactly one regular file of that name, or a clear refusal. */
export function findDump(tree: BackupTree, domain: string): string {
  const name = `${domain}-inactive.xml`;
  const found = [...tree.types].filter(([p]) => path.posix.basename(p) === name);
  const files = found.filter(([, type]) => type === 'file').map(([p]) => p);
  const odd = found.filter(([, type]) => type !== 'file');
  if (files.length === 1 && odd.length === 0) return files[0] ?? '';
  if (found.length === 0)
    throw new UserError(
      `${tree.what} holds no ${name} config dump of domain '${domain}'. Nothing was restored. Check the ` +
        `domain name, or pick another snapshot (restic snapshots; restic ls ID).`,
    );
  throw new UserError(
    `${tree.what} holds ${found.length === 1 ? 'no regular file' : 'more than one file'} named ${name}, so ` +
      `which domain to restore is ambiguous; nothing was restored:\n` +
      found.map(([p, type]) => `  ${p} (${type})`).join('\n') +
      `\nRestore by hand from a folder holding only the one wanted (--from DIR).`,
  );
}

/**
 * Where a file the backup names by a host path (a disk source, an absolute backing file) is in the
 * tree: at that path, or else beside `near` (a snapshot of a folder holds it under another prefix).
 */
export function locate(tree: BackupTree, hostPath: string, near: string): string | undefined {
  const exact = path.posix.normalize(hostPath);
  if (tree.types.has(exact)) return exact;
  const beside = path.posix.join(near, path.posix.basename(hostPath));
  return tree.types.has(beside) ? beside : undefined;
}

/** A staged file is what it must be: a regular file with one link, inside the staging folder. */
async function checkStaged(file: string, staging: string, what: string): Promise<void> {
  const info = await lstat(file).catch(() => undefined);
  if (info === undefined)
    throw new UserError(`${what}: restic restored nothing at ${file}. Nothing was placed.`);
  if (!info.isFile() || info.nlink !== 1)
    throw new UserError(
      `${what} is not a plain regular file (${info.isFile() ? `${info.nlink} hard links` : 'not a file'}); ` +
        `restore never follows links. Nothing was placed.`,
    );
  const real = await realpath(file);
  if (!real.startsWith(`${await realpath(staging)}/`))
    throw new UserError(`${what} resolves outside the staging folder, to ${real}. Nothing was placed.`);
  // restic restores the owner and mode the snapshot records: a set-uid bit or another user's ownership.
  await chown(file, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  await chmod(file, 0o600);
}

export function resticTree(
  restic: Restic,
  snapshot: ResticSnapshot,
  ls: readonly ResticLsEntry[],
): BackupTree {
  const what = `restic snapshot ${snapshot.shortId} of host '${snapshot.hostname}'`;
  return {
    what,
    snapshot: snapshot.shortId,
    types: new Map(ls.map((e) => [path.posix.normalize(e.path), e.type])),
    async fetch(paths, staging) {
      await restic.restoreFiles(snapshot.id, staging, paths);
      const staged = new Map<string, string>();
      for (const treePath of paths) {
        const file = path.join(staging, treePath);
        await checkStaged(file, staging, `${treePath} of ${what}`);
        staged.set(treePath, file);
      }
      return staged;
    },
  };
}

const nodeType = (e: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }) =>
  e.isFile() ? 'file' : e.isDirectory() ? 'dir' : e.isSymbolicLink() ? 'symlink' : 'other';

/** Opens without following a symlink and checks the open file itself, so no swap can slip in between. */
async function openPlainFile(file: string): Promise<Awaited<ReturnType<typeof open>>> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => {
    throw new UserError(`${file} is not a regular file that can be opened; restore never follows links.`);
  });
  const info = await handle.stat();
  if (!info.isFile() || info.nlink !== 1) {
    await handle.close();
    throw new UserError(
      `${file} is not a plain regular file (${info.isFile() ? `${info.nlink} hard links` : 'not a file'}); ` +
        `restore uses only files of its own. Nothing was placed.`,
    );
  }
  return handle;
}

/** A folder holding a backup (a restic restore made by hand, a copy); `inPlace` when it is also the target. */
export async function folderTree(dir: string, inPlace: boolean): Promise<BackupTree> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => {
    throw new UserError(`--from ${dir}: no such folder. Give the folder that holds the backed-up layers.`);
  });
  return {
    what: `folder ${dir}`,
    types: new Map(entries.map((e) => [path.join(dir, e.name), nodeType(e)])),
    async fetch(paths, staging) {
      const fetched = new Map<string, string>();
      for (const file of paths) {
        const handle = await openPlainFile(file);
        try {
          const copy = path.join(staging, path.basename(file));
          if (!inPlace) {
            // Copied through the open descriptor: the file checked is the file copied.
            await copyFile(`/proc/self/fd/${handle.fd}`, copy, constants.COPYFILE_EXCL);
            await chmod(copy, 0o600);
          }
          fetched.set(file, inPlace ? file : copy);
        } finally {
          await handle.close();
        }
      }
      return fetched;
    },
  };
}
