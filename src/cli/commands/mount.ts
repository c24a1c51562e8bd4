import { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { MountResult, MountSource } from '../../ops/mount.js';
import type { OpsContext } from '../../ops/context.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';
import { configOption } from '../repository.js';
import { resticSource } from './restore.js';

const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;

export function mountLines(result: MountResult): string[] {
  const head =
    result.mountpoint === undefined
      ? `${result.domain}: ${result.from} holds disks ${result.disks.join(', ')}; disk ${result.disk}:`
      : `${result.domain}: disk ${result.disk} of ${result.from} mounted read-only at ${result.mountpoint}`;
  return [
    head,
    ...result.filesystems.map(
      (f) =>
        `  ${f.name}  ${f.type ?? 'unknown'}  ${mib(f.size)}` +
        (f.folder === undefined ? '' : `  ${f.folder}`) +
        (f.skipped === undefined
          ? ''
          : `  (${result.mountpoint === undefined ? '' : 'not mounted: '}${f.skipped})`),
    ),
    ...(result.mountpoint === undefined
      ? []
      : [`  take it down with: unifi-backup unmount '${result.mountpoint}'`]),
  ];
}

interface MountOptions {
  from?: string;
  disk?: string;
  host?: string;
  list?: boolean;
  config?: string;
}

async function mountSource(options: MountOptions, ctx: OpsContext): Promise<MountSource> {
  if (options.from === undefined) {
    if (options.host !== undefined)
      throw new UsageError('--host chooses restic snapshots; it goes with --from restic');
    return { kind: 'live' };
  }
  const { parseFrom } = await import('../../ops/restore.js');
  const from = parseFrom(options.from);
  if (from.kind === 'dir') {
    if (options.host !== undefined)
      throw new UsageError('--host chooses restic snapshots; it does not go with --from DIR');
    return from;
  }
  return { kind: 'restic', choice: await resticSource(options, ctx.host.runner, from.snapshot) };
}

export function mountCommand(): Command {
  return new Command('mount')
    .summary("browse one disk of a backup read-only: each partition's files under a folder")
    .description(
      "Reads only one disk's chain of a backup (restic snapshot or folder), or the " +
        "live domain's frozen layers when --from is not given (the state at its last " +
        'snapshot), exports it with qemu-storage-daemon (FUSE) with every layer ' +
        'read-only, and mounts every filesystem on it read-only under MOUNTPOINT, one ' +
        'folder per partition named by number and label (1-boot, 2), or disk for a ' +
        'disk without a partition table. Nothing writes to a layer: a journal replay ' +
        'goes to a scratch overlay that unmount deletes. Needs root and /dev/fuse. ' +
        'Take it down with: unifi-backup unmount MOUNTPOINT',
    )
    .argument('<domain>', 'the domain the backup was made of')
    .argument('[mountpoint]', 'an empty folder (not with --list)')
    .option(
      '--from <source>',
      "'restic' (latest snapshot), 'restic:SNAPSHOT', or a folder; default: the live frozen layers",
    )
    .option('--disk <target>', 'the disk to mount (default: the first)')
    .option('--host <name>', "a snapshot made by this host name (default: this host's)")
    .option('--list', 'print the disks and partitions of the backup; mount nothing')
    .addOption(configOption())
    .action(
      async (domain: string, mountpoint: string | undefined, options: MountOptions, command: Command) => {
        const global = globalOptions(command);
        if (global.dryRun)
          throw new UsageError('mount has no --dry-run; use --list to see what it would mount');
        if ((mountpoint === undefined) !== (options.list === true))
          throw new UsageError('give a MOUNTPOINT, or --list to mount nothing');
        const ctx = opsContext(global);
        const { mountDisk } = await import('../../ops/mount.js');
        const result = await mountDisk(ctx, domain, {
          source: await mountSource(options, ctx),
          ...(options.disk === undefined ? {} : { disk: options.disk }),
          ...(mountpoint === undefined ? {} : { mountpoint }),
        });
        report([{ domain, status: 'ok', value: result }], { json: global.json, all: false }, mountLines);
      },
    );
}

export function unmountCommand(): Command {
  return new Command('unmount')
    .summary("take down what 'mount' set up: filesystems, loop devices, the export, the work folder")
    .description(
      "Unmounts the filesystems 'mount' put under MOUNTPOINT, detaches their loop devices, " +
        'stops the qemu-storage-daemon export and removes the private work folder and ' +
        "the mount record. A 'mount' killed midway is taken down by the next 'mount' or " +
        "by 'unifi-backup repair DOMAIN'.",
    )
    .argument('<mountpoint>', 'the folder given to mount')
    .action(async (mountpoint: string, _options: unknown, command: Command) => {
      const global = globalOptions(command);
      const ctx = opsContext(global);
      const { unmountAt } = await import('../../ops/mount.js');
      const result = await unmountAt(ctx, mountpoint);
      report(
        [{ domain: result.domain, status: 'ok', value: result }],
        { json: global.json, all: false },
        (r) => [
          `${r.domain}: disk ${r.disk} unmounted from ${r.mountpoint}`,
          ...r.actions.map((a) => `  ${a}`),
        ],
      );
    });
}
