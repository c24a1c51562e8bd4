import os from 'node:os';
import { Command, Option } from 'commander';
import { UsageError } from '../../errors.js';
import type { KeepWord } from '../../host/passthrough.js';
import { keepWords } from '../../host/passthrough.js';
import type { Runner } from '../../host/runner.js';
import type { RestoreResult, RestoreSource } from '../../ops/restore.js';
import { globalOptions, opsContext } from '../context.js';
import { report } from '../report.js';
import { configOption, repository } from '../repository.js';

export function restoreLines(result: RestoreResult): string[] {
  return [
    `${result.domain}: restored${result.snapshot === undefined ? '' : ` from restic snapshot ${result.snapshot}`} ` +
      `as '${result.name}' into ${result.folder}`,
    ...result.disks.map(
      (d) => `  ${d.target}: ${d.chain.map((f) => f.slice(f.lastIndexOf('/') + 1)).join(' ← ')}`,
    ),
    ...result.vmFiles.map((f) => `  VM file: ${f}`),
    ...(result.rebased.length > 0 ? [`  backing paths rewritten in ${result.rebased.length} layers`] : []),
    `  definition: ${result.definition}`,
    result.started
      ? `  domain '${result.name}' defined and started`
      : result.defined
        ? `  domain '${result.name}' defined; start it with: virsh start '${result.name}'`
        : `  define it with: virsh define '${result.definition}'`,
  ];
}

function keepList(value: string, previous: KeepWord[] | undefined): KeepWord[] {
  const words = value.split(',').map((w) => w.trim());
  const unknown = words.filter((w) => !(keepWords as readonly string[]).includes(w));
  if (unknown.length > 0)
    throw new UsageError(
      `--keep-device: unknown ${unknown.join(', ')}; the words are ${keepWords.join(', ')}`,
    );
  return [...(previous ?? []), ...(words as KeepWord[])];
}

/** One `--device-to TARGET=DEVICE`, added to those given before. */
export function deviceToList(value: string, previous: Map<string, string> | undefined): Map<string, string> {
  const at = value.indexOf('=');
  const target = value.slice(0, at);
  const device = value.slice(at + 1);
  if (at < 1 || !device.startsWith('/'))
    throw new UsageError(`--device-to ${value}: give TARGET=/dev/DEVICE, e.g. vda=/dev/vg0/web-restored`);
  if (previous?.has(target)) throw new UsageError(`--device-to: disk ${target} is named twice`);
  return new Map([...(previous ?? []), [target, device]]);
}

interface RestoreOptions {
  from: string;
  to?: string;
  as?: string;
  host?: string;
  keepDevice?: KeepWord[];
  deviceTo?: Map<string, string>;
  define?: boolean;
  start?: boolean;
  config?: string;
}

/** The repository, and whose snapshots: restic records this host as its host name (or restic.host). */
export async function resticSource(
  options: Pick<RestoreOptions, 'config' | 'host'>,
  runner: Runner,
  snapshot: string | undefined,
): Promise<Extract<RestoreSource, { kind: 'restic' }>> {
  const { settings, restic } = await repository(options.config, runner);
  const own = settings.host ?? os.hostname();
  const host = options.host ?? own;
  return {
    kind: 'restic',
    restic,
    host,
    foreign: host !== own,
    ...(snapshot === undefined ? {} : { snapshot }),
  };
}

export function restoreCommand(): Command {
  return new Command('restore')
    .summary('restore a domain from a restic snapshot or a folder, optionally as a new domain')
    .description(
      "Reads the backup's tree (a snapshot of the files or of the whole folder) and " +
        "restores only the config dumps and each disk's chain as the " +
        '<domain>-inactive.xml dump names it, as regular files, into one target folder. ' +
        "A block-device disk's copy (made by run) comes back as a raw file there, or onto the device --device-to names. " +
        'Rebuilds and checks each chain there (`qemu-img rebase -u` when the folder ' +
        'moved) and writes a definition that runs each disk from its top frozen layer. ' +
        "Never overwrites a file or a defined domain. Only this host's snapshots are " +
        'used unless --host names another. A definition reaching host resources that ' +
        'were not restored is refused unless --keep-device keeps them:\n' +
        '  host-disk         disks not restored: network and pool volumes, other files\n' +
        '  hostdev           PCI/USB/SCSI passthrough (<hostdev>, hostdev interfaces)\n' +
        '  filesystem        host folders shared with the guest (<filesystem>)\n' +
        '  host-file         serial/console/channel output to a file elsewhere\n' +
        '  qemu-commandline  <qemu:commandline>, other elements of the qemu namespace\n' +
        "  emulator          an <emulator> that this host's libvirt does not offer",
    )
    .argument('<domain>', 'the domain name the backup was made of')
    .requiredOption(
      '--from <source>',
      "'restic' (latest snapshot of the domain), 'restic:SNAPSHOT', or a folder",
    )
    .option('--to <dir>', "the one folder all files go into (default: the config dump's folder)")
    .option('--as <name>', 'a new name, with a new UUID and new MAC addresses, to run beside the original')
    .option('--host <name>', "restore a snapshot made by this host name (default: this host's)")
    .addOption(
      new Option(
        '--keep-device <words>',
        `host resources the definition may keep: ${keepWords.join(',')}`,
      ).argParser(keepList),
    )
    .addOption(
      new Option(
        '--device-to <target=device>',
        "write the copy of a block-device disk onto this device (repeatable; default: a raw file in the target folder); the device must be a domain's in no way, unmounted and large enough",
      ).argParser(deviceToList),
    )
    .option('--define', 'define the restored domain in libvirt')
    .option('--start', 'define and start the restored domain')
    .addOption(configOption())
    .action(restore);
}

/** `restore DOMAIN`: the options turned into one restore request. */
async function restore(domain: string, options: RestoreOptions, command: Command): Promise<void> {
  const global = globalOptions(command);
  if (global.dryRun) throw new UsageError('restore has no --dry-run; it never overwrites anything');
  const ctx = opsContext(global);
  const { parseFrom, restoreDomain } = await import('../../ops/restore.js');
  const from = parseFrom(options.from);
  if (from.kind === 'dir' && options.host !== undefined)
    throw new UsageError('--host chooses restic snapshots; it does not go with --from DIR');
  const source = from.kind === 'dir' ? from : await resticSource(options, ctx.host.runner, from.snapshot);
  const result = await restoreDomain(ctx, domain, {
    source,
    ...(options.to === undefined ? {} : { to: options.to }),
    ...(options.as === undefined ? {} : { as: options.as }),
    keep: options.keepDevice ?? [],
    ...(options.deviceTo === undefined ? {} : { deviceTo: options.deviceTo }),
    define: options.define === true,
    start: options.start === true,
  });
  report([{ domain, status: 'ok', value: result }], { json: global.json, all: false }, restoreLines);
}
