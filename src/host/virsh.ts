import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, openSync, readdirSync, readlinkSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunState, XmlFlavour } from '../chain/model.js';
import { InternalError, UserError } from '../errors.js';
import { parseDomainXml } from './domainxml.js';
import type { ProgramResult, Runner } from './runner.js';
import {
  adoptEarlyConnection,
  blockCommitActive,
  blockJobAbortPivot,
  domainXmlFlags,
  LibvirtClosedError,
  LibvirtConnection,
  LibvirtConnectionError,
  LibvirtError,
  LibvirtTimeoutError,
  listDomainsFlags,
  snapshotCreateFlags,
} from './libvirtrpc.js';
import type { RemoteBlockJob, RemoteDomain } from './libvirtrpc.js';
import { ProcessError, ProgramTimeoutError, runChecked } from './runner.js';
import type { Timeouts } from './timeouts.js';
import { defaultTimeouts } from './timeouts.js';
import { commandLine } from './virshshell.js';
import type { VirshShell } from './virshshell.js';

export interface DomainInfo {
  readonly name: string;
  readonly uuid: string;
  readonly runState: RunState;
  readonly persistent: boolean;
  /** A shut-off domain whose RAM libvirt saved (`virsh managedsave`): its disks must stay as they are. */
  readonly managedSave: boolean;
}

/** What one batched read learned about a domain; read one at a time instead when absent. */
export interface DomainDefinitions {
  readonly info: DomainInfo;
  readonly live: string;
  /** `dumpxml --inactive`: the persistent definition (the live one again for a transient domain). */
  readonly inactive: string;
  /** With readAll({ blockJobs }): each disk's block job of a running domain (undefined: none). */
  readonly blockJobs?: ReadonlyMap<string, BlockJobInfo | undefined>;
}

type MutableDefinitions = { -readonly [K in keyof DomainDefinitions]: DomainDefinitions[K] };

export interface ListedDomain {
  readonly name: string;
  /** Undefined when the batched read of this domain failed (it vanished, or virsh said no). */
  readonly definitions: DomainDefinitions | undefined;
}

/** A listed domain whose definitions arrive with the batched run that reads them. */
export interface PendingDomain {
  readonly name: string;
  readonly definitions: Promise<DomainDefinitions | undefined>;
}

const uuidPattern = /^[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}$/;
/**
 * A domain name virsh's command language reads as one plain word: letters, digits and `_.+-`,
 * starting with a letter or `_` (so never an option, a domain ID, or quoting of any kind).
 */
const plainName = /^[A-Za-z_][A-Za-z0-9_.+-]*$/;
/** A disk target as libvirt names them (vda, sdb, hdc): safe as a word of a batched command. */
const targetPattern = /^[a-z][a-z0-9]*$/;
/**
 * How many domains one batched virsh run reads: keeps its single argument far below 128 KiB, and
 * lets a caller of `readAllInBatches` start on the first domains while libvirt reads the rest.
 */
const batchSize = 25;

/** A snapshot-create waiting for its document (Virsh.prepareSnapshot). */
interface PreparedSnapshot {
  /** Its flags, joined: it is used only by a snapshot with the same. */
  readonly flags: string;
  readonly give: (xml: string) => void;
  readonly withdraw: (error: Error) => void;
  /** virsh's run; undefined when its FIFO could not be made (nothing started: run it the usual way). */
  readonly result: Promise<ProgramResult | undefined>;
}

/** The flags of every snapshot the tool takes: external, atomic across disks, no libvirt metadata. */
function snapshotFlags(options: { quiesce: boolean; memory: boolean }): string[] {
  return [
    '--no-metadata',
    '--atomic',
    ...(options.memory ? [] : ['--disk-only']),
    ...(options.quiesce ? ['--quiesce'] : []),
  ];
}

/** The same flags as virDomainSnapshotCreateXML takes them. */
function snapshotCallFlags(options: { quiesce: boolean; memory: boolean }): number {
  const { noMetadata, atomic, diskOnly, quiesce } = snapshotCreateFlags;
  return noMetadata | atomic | (options.memory ? 0 : diskOnly) | (options.quiesce ? quiesce : 0);
}

/** One poll of a block job: its progress (`virsh blockjob --raw` cur and end) and when it was read. */
export interface JobSample {
  readonly cur: number;
  readonly end: number;
  readonly at: number;
}

/**
 * When to poll a block job next, in ms: backing off from the last delay by half to 100 ms, but no
 * later than the end its rate since the previous poll predicts (never sooner than 10 ms), so that
 * a job is not left finished for most of a poll.
 */
export function nextPollDelay(previous: JobSample | undefined, current: JobSample, delay: number): number {
  const backedOff = Math.min(delay * 1.5, 100);
  if (current.end <= 0) return backedOff;
  // All copied: the job ends (or turns ready) in a moment; then back off again if it does not.
  if (current.cur >= current.end)
    return previous !== undefined && previous.cur >= previous.end ? backedOff : 10;
  if (previous === undefined) return backedOff;
  const moved = current.cur - previous.cur;
  const elapsed = current.at - previous.at;
  if (moved <= 0 || elapsed <= 0) return backedOff;
  const predicted = ((current.end - current.cur) / moved) * elapsed;
  return Math.max(10, Math.min(backedOff, Math.ceil(predicted)));
}

/** The domain does not exist on this connection. */
export class NoSuchDomainError extends UserError {}

/** A block job made no progress for the stall timeout and was aborted. */
export class BlockJobStalledError extends UserError {}

/** libvirtd did not answer (not running, restarting, or the URI is wrong). */
export class ConnectionError extends UserError {}

/** How long a block job is waited for through a libvirtd restart: QEMU runs the job meanwhile. */
const reconnectMs = 60_000;

/**
 * libvirt's own connection, for the changes a backup makes to a running domain (snapshot, block
 * pull and active commit started, pivot): the daemon's socket, and `log`, told each call (--debug).
 */
export interface LibvirtSocket {
  readonly path: string;
  readonly log?: (line: string) => void;
  /**
   * Test-only: the speed limit, in MiB/s, of the block jobs started on the connection, so that a
   * test can restart libvirtd under one (`UNIFI_BACKUP_FAULT_JOB_MIB_S`); unlimited when unset.
   */
  readonly jobMibPerSecond?: number;
}

/**
 * Typed access to libvirt; every virsh run names the domain with `--domain` so names are data.
 * With `libvirt` (the local daemon's socket), read-only questions (`read`) and the snapshot, the
 * start of a block pull or active commit and the pivot (`change`) are calls on the tool's own
 * connection. Every other question, and one libvirt answered with an error, goes to the shell (one
 * long-lived virsh: one connection) when there is one; every other change, and every question the
 * shell cannot answer, is a virsh run of its own.
 */
export class Virsh {
  constructor(
    private readonly runner: Runner,
    private readonly uri: string,
    private readonly timeouts: Timeouts = defaultTimeouts,
    private readonly shell?: VirshShell,
    private readonly libvirt?: LibvirtSocket,
  ) {}

  /** The connection on `libvirt`'s socket, opened once; undefined when it cannot be. */
  private connection: Promise<LibvirtConnection | undefined> | undefined;

  /**
   * snapshot-create runs started by prepareSnapshot (without a connection of our own), by domain,
   * until snapshotCreate takes them.
   */
  private readonly prepared = new Map<string, PreparedSnapshot>();

  private argv(args: readonly string[]): string[] {
    return ['virsh', '--quiet', '--connect', this.uri, ...args];
  }

  /** Runs virsh, stopped after `timeoutMs` (undefined: unbounded); a timeout names `what`. */
  private async call(args: readonly string[], what: string, timeoutMs?: number): Promise<ProgramResult> {
    try {
      return await this.runner({
        argv: this.argv(args),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      });
    } catch (error) {
      throw timedOut(error, what);
    }
  }

  /**
   * A read-only question (`line`: the same in virsh's command language) through the shell: its
   * output, or undefined when there is no shell or it could not answer (the caller runs virsh).
   */
  private async ask(
    args: readonly string[],
    line: string | undefined,
    what: string,
  ): Promise<string | undefined> {
    if (this.shell === undefined || line === undefined) return undefined;
    try {
      return await this.shell.ask(line, this.timeouts.virshMs);
    } catch (error) {
      throw timedOut(
        error instanceof ProgramTimeoutError
          ? new ProgramTimeoutError(this.argv(args), error.timeoutMs)
          : error,
        what,
      );
    }
  }

  /** A read-only virsh command: asked through the shell, or run on its own when it cannot answer. */
  private async query(args: readonly string[], what: string): Promise<string> {
    return (await this.ask(args, commandLine(args), what)) ?? (await this.run(args, what));
  }

  /**
   * A read-only question as calls on libvirt's own connection (`call`; `args`: the calls, for
   * --debug). Undefined, for the caller to ask virsh, when there is no connection or libvirt
   * answered with an error (the domain vanished, the connection was lost): virsh's answer, and its
   * report of the error, are the canonical ones. A call without an answer within the virsh timeout
   * is a virsh timeout.
   */
  private async read<T>(
    args: readonly string[],
    what: string,
    call: (connection: LibvirtConnection) => Promise<T>,
  ): Promise<T | undefined> {
    const connection = await this.libvirtConnection();
    if (connection === undefined) return undefined;
    this.libvirt?.log?.(`+ libvirt> ${args.join(' ')}`);
    try {
      return await call(connection);
    } catch (error) {
      if (error instanceof LibvirtTimeoutError)
        throw timedOut(new ProgramTimeoutError(this.argv(args), error.timeoutMs), what, true);
      if (error instanceof LibvirtError || error instanceof LibvirtConnectionError) return undefined;
      throw error;
    }
  }

  /** dominfo's fields of a domain, asked on the connection. */
  private static async remoteInfo(connection: LibvirtConnection, domain: RemoteDomain): Promise<DomainInfo> {
    const [state, persistent, managedSave] = await Promise.all([
      connection.domainState(domain),
      connection.isPersistent(domain),
      connection.hasManagedSave(domain),
    ]);
    return {
      name: domain.name,
      uuid: uuidText(domain.uuid),
      runState: runStateOf(stateWord(state)),
      persistent,
      managedSave,
    };
  }

  private async run(
    args: readonly string[],
    what: string,
    timeoutMs: number | undefined = this.timeouts.virshMs,
  ): Promise<string> {
    return this.succeeded(await this.call(args, what, timeoutMs), what);
  }

  /** The output of a virsh run that succeeded; otherwise the error that names `what`. */
  private succeeded(result: ProgramResult, what: string): string {
    if (result.exitCode !== 0) {
      if (/failed to get domain|Domain not found/i.test(result.stderr))
        throw new NoSuchDomainError(`${what}: no such domain. List domains with: virsh list --all`);
      if (/failed to connect to the hypervisor/i.test(result.stderr))
        throw new ConnectionError(
          `${what}: cannot connect to libvirt at ${this.uri}: ${result.stderr.trim().split('\n').at(-1) ?? ''}. ` +
            `Check --connect (or LIBVIRT_DEFAULT_URI) and that libvirtd runs.`,
        );
      throw new ProcessError(result, what);
    }
    return result.stdout;
  }

  /**
   * Every domain of the connection (`withSnapshot`: those with libvirt snapshot metadata), in
   * `virsh list` order, as the connection names them.
   */
  private listRemote(what: string, withSnapshot = false): Promise<RemoteDomain[] | undefined> {
    return this.read(
      ['virConnectListAllDomains', ...(withSnapshot ? ['--with-snapshot'] : [])],
      what,
      async (connection) =>
        inVirshOrder(await connection.listAllDomains(withSnapshot ? listDomainsFlags.hasSnapshot : 0)),
    );
  }

  async listDomains(): Promise<string[]> {
    const remote = await this.listRemote('listing domains');
    if (remote !== undefined) return remote.map((d) => d.name);
    const out = await this.query(['list', '--all', '--name'], 'listing domains');
    return out.split('\n').filter((l) => l.trim() !== '');
  }

  /** The UUIDs of every defined or running domain. */
  async listUuids(): Promise<string[]> {
    const remote = await this.listRemote('listing domain UUIDs');
    if (remote !== undefined) return remote.map((d) => uuidText(d.uuid));
    const out = await this.query(['list', '--all', '--uuid'], 'listing domain UUIDs');
    return out
      .split('\n')
      .map((l) => l.trim().toLowerCase())
      .filter((l) => l !== '');
  }

  /** The emulator binaries this host's libvirt offers (`virsh capabilities`). */
  async emulators(): Promise<string[]> {
    const out = await this.query(['capabilities'], 'reading the host capabilities');
    return [...new Set([...out.matchAll(/<emulator>([^<]+)<\/emulator>/g)].map((m) => m[1] ?? ''))];
  }

  /** Domains that have libvirt snapshot metadata (one call, or one virsh run). */
  async domainsWithSnapshots(): Promise<string[]> {
    const what = 'listing domains with snapshots';
    const remote = await this.listRemote(what, true);
    if (remote !== undefined) return remote.map((d) => d.name);
    const out = await this.query(['list', '--all', '--with-snapshot', '--name'], what);
    return out.split('\n').filter((l) => l.trim() !== '');
  }

  async snapshotNames(domain: string): Promise<string[]> {
    const out = await this.query(
      ['snapshot-list', '--domain', domain, '--name'],
      `listing the snapshots of domain '${domain}'`,
    );
    return out.split('\n').filter((l) => l.trim() !== '');
  }

  snapshotXml(domain: string, snapshot: string): Promise<string> {
    return this.query(
      ['snapshot-dumpxml', '--domain', domain, '--snapshotname', snapshot],
      `reading snapshot '${snapshot}' of domain '${domain}'`,
    );
  }

  async info(domain: string): Promise<DomainInfo> {
    const what = `domain '${domain}'`;
    const remote = await this.read([...infoCalls, '--domain', domain], what, async (connection) =>
      Virsh.remoteInfo(connection, await connection.lookupDomain(domain)),
    );
    return remote ?? parseDomInfo(await this.query(['dominfo', '--domain', domain], what), domain);
  }

  /**
   * Every domain of the connection, in `virsh list` order, with its run state and definitions. On
   * libvirt's own connection: the same lists and reads as calls that libvirt answers side by side
   * (readAllRemote). Otherwise one `virsh` run per 25 domains instead of three per domain: virsh
   * runs a single argument holding `;`-separated commands; the only words put into it are fixed
   * ones, UUIDs that libvirt printed (checked against the UUID pattern) and a random marker, so
   * nothing from a definition or a user is ever parsed by virsh's command language. Either way,
   * persistence and managed saves come from a few filtered lists (one libvirt call each, where
   * `dominfo` makes about ten per domain), the run state is read with each definition, and the
   * persistent definition only where it can differ: a persistent domain that runs. A domain whose
   * read failed, or whose answers disagree, comes back without definitions, for the caller to read
   * alone and report properly.
   */
  async readAll(options: { readonly blockJobs?: boolean } = {}): Promise<ListedDomain[]> {
    const pending = await this.readAllInBatches(options);
    return Promise.all(
      pending.map(async ({ name, definitions }) => ({ name, definitions: await definitions })),
    );
  }

  /**
   * As readAll, without waiting for the batches: each domain's definitions arrive when the calls
   * or the virsh run that read them have answered (on the connection side by side; virsh runs one
   * after the other, in list order).
   */
  async readAllInBatches(options: { readonly blockJobs?: boolean } = {}): Promise<PendingDomain[]> {
    return (await this.readAllRemote(options)) ?? (await this.readAllShelled(options));
  }

  /**
   * readAllInBatches on libvirt's own connection: the same lists (all, then the filters) and the
   * same reads of each domain, as calls that libvirt answers side by side. Undefined when there is
   * no connection or a list failed.
   */
  private async readAllRemote(options: {
    readonly blockJobs?: boolean;
  }): Promise<PendingDomain[] | undefined> {
    const { persistent, transient, managedSave, noManagedSave, shutOff } = listDomainsFlags;
    const lists = await this.read(
      [
        'virConnectListAllDomains',
        '--all',
        '--persistent',
        '--transient',
        '--managed-save',
        '--no-managed-save',
        '--shut-off',
      ],
      'listing domains',
      (connection) =>
        Promise.all(
          [0, persistent, transient, managedSave, noManagedSave, shutOff].map((flags) =>
            connection.listAllDomains(flags),
          ),
        ),
    );
    if (lists === undefined) return undefined;
    const [all = [], ...filters] = lists;
    const kinds = domainKinds(filters.map((list) => list.map((d) => uuidText(d.uuid))));
    return inVirshOrder(all).map((domain) => {
      const kind = kinds.kindOf(uuidText(domain.uuid));
      return {
        name: domain.name,
        definitions:
          kind === undefined
            ? Promise.resolve(undefined)
            : this.readRemoteDomain(domain, kind, options.blockJobs === true),
      };
    });
  }

  /**
   * One listed domain's run state and definitions on the connection (with `blockJobs`, its disks'
   * block jobs when it runs), judged as a batched virsh read is (definitionsOf).
   */
  private readRemoteDomain(
    domain: RemoteDomain,
    kind: DomainKind,
    blockJobs: boolean,
  ): Promise<DomainDefinitions | undefined> {
    const uuid = uuidText(domain.uuid);
    const withInactive = kind.persistent && !kind.listedShutOff;
    const calls = ['virDomainGetState', xmlCall('live'), ...(withInactive ? [xmlCall('inactive')] : [])];
    return this.read([...calls, '--domain', uuid], `reading domain '${domain.name}'`, async (connection) => {
      const [state, live, inactive] = await Promise.all([
        connection.domainState(domain),
        connection.domainXml(domain, 0),
        ...(withInactive ? [connection.domainXml(domain, domainXmlFlags.inactive)] : []),
      ]);
      const read = definitionsOf({ name: domain.name, uuid, ...kind }, [
        stateWord(state),
        live,
        ...(inactive === undefined ? [] : [inactive]),
      ]);
      if (read !== undefined && blockJobs && read.info.runState !== 'shut off') {
        const targets = diskTargets(live);
        const jobs = await Promise.all(targets.map((target) => connection.blockJobInfo(domain, target)));
        read.blockJobs = new Map(
          targets.map((target, i) => {
            const job = jobs[i];
            return [target, job === undefined ? undefined : blockJobOf(job)];
          }),
        );
      }
      return read;
    });
  }

  /** readAllInBatches through the virsh shell (or virsh runs), 25 domains per batch. */
  private async readAllShelled(options: { readonly blockJobs?: boolean }): Promise<PendingDomain[]> {
    const out = await this.query(['list', '--all', '--uuid', '--name'], 'listing domains');
    const listed = out
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const space = line.indexOf(' ');
        return { uuid: line.slice(0, space), name: line.slice(space + 1) };
      });
    const filters = await this.listFilters();
    const safe = listed.flatMap((d) => {
      const kind = filters.kindOf(d.uuid);
      return uuidPattern.test(d.uuid) && kind !== undefined ? [{ ...d, ...kind }] : [];
    });
    const reads = new Map<string, Promise<DomainDefinitions | undefined>>();
    let previous: Promise<unknown> = Promise.resolve();
    for (let start = 0; start < safe.length; start += batchSize) {
      const domains = safe.slice(start, start + batchSize);
      const read = previous.then(async () => {
        const sections = await this.batch(
          domains.map((d) =>
            ['domstate', 'dumpxml', ...(d.persistent && !d.listedShutOff ? ['dumpxml --inactive'] : [])].map(
              (command) => `${command} --domain ${d.uuid}`,
            ),
          ),
        );
        const definitions = domains.map((d, i) => definitionsOf(d, sections[i] ?? []));
        if (options.blockJobs === true) await this.addBlockJobs(definitions);
        return definitions;
      });
      previous = read;
      domains.forEach((d, i) =>
        reads.set(
          d.uuid,
          read.then((definitions) => definitions[i]),
        ),
      );
    }
    return listed.map((d) => ({
      name: d.name,
      definitions: reads.get(d.uuid) ?? Promise.resolve(undefined),
    }));
  }

  /**
   * Which domains are persistent, have a managed save, and were shut off, from `list` filters in
   * one batched run. A UUID that is not in exactly one list of each pair (a list failed, or the
   * domain changed between two lists) has no kind: it is read alone.
   */
  private async listFilters(): Promise<{ kindOf(uuid: string): DomainKind | undefined }> {
    const flags = ['--persistent', '--transient', '--with-managed-save', '--without-managed-save'];
    const [outputs = []] = await this.batch([
      [...flags, '--state-shutoff'].map((flag) => `list --all --uuid ${flag}`),
    ]);
    return domainKinds(outputs.map((text) => text.split('\n').map((line) => line.trim().toLowerCase())));
  }

  /**
   * The block job of every disk of every running domain, batched like readAll. A target name is put
   * into the command only when it is a plain word; other disks are left to be asked alone.
   */
  private async addBlockJobs(read: (MutableDefinitions | undefined)[]): Promise<void> {
    const running = read
      .filter((d): d is MutableDefinitions => d !== undefined && d.info.runState !== 'shut off')
      .map((d) => ({
        definitions: d,
        targets: diskTargets(d.live).filter((target) => targetPattern.test(target)),
      }));
    const sections = await this.batch(
      running.map(({ definitions, targets }) =>
        targets.map((target) => `blockjob --domain ${definitions.info.uuid} --path ${target} --info --raw`),
      ),
    );
    running.forEach(({ definitions, targets }, i) => {
      definitions.blockJobs = new Map(
        targets.map((target, k) => [target, parseBlockJobInfo(sections[i]?.[k] ?? '')]),
      );
    });
  }

  /**
   * Runs each item's commands (fixed words and UUIDs only) in one virsh run per 25 items and
   * returns each command's output, split at random markers. virsh's exit status is the last
   * command's: a failed command shows as an empty output.
   */
  private async batch(items: readonly (readonly string[])[]): Promise<string[][]> {
    const outputs = items.map((commands) => commands.map(() => ''));
    for (let start = 0; start < items.length; start += batchSize) {
      const marker = `@@unifi-backup-${randomBytes(8).toString('hex')}`;
      const commands = items
        .slice(start, start + batchSize)
        .flatMap((item, i) => item.flatMap((command, k) => [`echo ${marker}-${start + i}-${k}@@`, command]));
      if (commands.length === 0) continue;
      const line = commands.join('; ');
      const stdout =
        (await this.ask([line], line, 'reading domains')) ??
        (await this.call([line], 'reading domains', this.timeouts.virshMs)).stdout;
      const sections = stdout.split(new RegExp(`${marker}-(\\d+)-(\\d+)@@\\n?`));
      for (let j = 1; j + 2 < sections.length; j += 3) {
        const row = outputs[Number(sections[j])];
        if (row !== undefined) row[Number(sections[j + 1])] = sections[j + 2] ?? '';
      }
    }
    return outputs;
  }

  async dumpXml(domain: string, flavour: XmlFlavour = 'live'): Promise<string> {
    const flags = flavour === 'live' ? [] : [`--${flavour}`];
    const what = `reading the definition of domain '${domain}'`;
    const remote = await this.read([xmlCall(flavour), '--domain', domain], what, async (connection) =>
      connection.domainXml(await connection.lookupDomain(domain), xmlFlags(flavour)),
    );
    return remote ?? (await this.query(['dumpxml', '--domain', domain, ...flags], what));
  }

  /**
   * Run state (unless `info` is false) and the given definitions of one domain: calls on libvirt's
   * own connection, side by side, or else a single virsh run, batched like readAll, only when the
   * name is a plain word for virsh's command language. Undefined when it is not, or when any read
   * failed or answered for another domain: the caller then reads one at a time, so a failure
   * carries virsh's own message.
   */
  async readPlain(
    domain: string,
    flavours: readonly XmlFlavour[],
    options: { readonly info?: boolean } = {},
  ): Promise<{ info?: DomainInfo; xml: Map<XmlFlavour, string> } | undefined> {
    const withInfo = options.info !== false;
    const remote = await this.read(
      [...(withInfo ? infoCalls : []), ...flavours.map(xmlCall), '--domain', domain],
      `reading domain '${domain}'`,
      async (connection) => {
        const target = await connection.lookupDomain(domain);
        const [info, ...xmls] = await Promise.all([
          withInfo ? Virsh.remoteInfo(connection, target) : undefined,
          ...flavours.map((f) => connection.domainXml(target, xmlFlags(f))),
        ]);
        return {
          ...(info === undefined ? {} : { info }),
          xml: new Map(flavours.map((f, i) => [f, xmls[i] ?? ''])),
        };
      },
    );
    if (remote !== undefined) return remote;
    if (!plainName.test(domain)) return undefined;
    const commands = [
      ...(withInfo ? [`dominfo --domain ${domain}`] : []),
      ...flavours.map((f) => `dumpxml --domain ${domain}${f === 'live' ? '' : ` --${f}`}`),
    ];
    const [outputs = []] = await this.batch([commands]);
    const info = withInfo ? parseDomInfo(outputs[0] ?? '', '') : undefined;
    if (info !== undefined && info.name !== domain) return undefined;
    const xmls = outputs.slice(withInfo ? 1 : 0);
    if (!xmls.every((xml) => xml.trimStart().startsWith('<domain'))) return undefined;
    return {
      ...(info === undefined ? {} : { info }),
      xml: new Map(flavours.map((f, i) => [f, xmls[i] ?? ''])),
    };
  }

  /** Replaces the persistent definition (the file is written by us, so no quoting is involved). */
  async define(xml: string, domain: string): Promise<void> {
    await withTempFile('domain.xml', xml, (file) =>
      this.run(['define', '--file', file], `redefining domain '${domain}'`),
    );
  }

  async start(domain: string): Promise<void> {
    await this.run(['start', '--domain', domain], `starting domain '${domain}'`);
  }

  /** Stops the VM at once, like pulling the plug; a persistent definition stays. */
  async destroy(domain: string): Promise<void> {
    await this.run(['destroy', '--domain', domain], `stopping domain '${domain}'`);
  }

  /** The domain XML a memory state file (a libvirt save image) was taken with. */
  saveImageXml(file: string): Promise<string> {
    return this.query(['save-image-dumpxml', '--file', file], `reading the memory state ${file}`);
  }

  /** Resumes a VM from a memory state file, running the given domain XML (its disks may be edited). */
  async restore(file: string, xml: string, domain: string): Promise<void> {
    await withTempFile('domain.xml', xml, (xmlFile) =>
      this.run(
        ['restore', '--file', file, '--xml', xmlFile, '--running'],
        `restoring domain '${domain}' from ${file}`,
        // Reads the guest's whole memory: its time grows with the VM, so no fixed bound fits.
        undefined,
      ),
    );
  }

  /**
   * One external snapshot of the given disks, atomic across them, with no libvirt metadata:
   * the chain itself is the record (DESIGN §3). One call on libvirt's own connection where there is
   * one, else the prepared virsh run, else a virsh run. With `quiesce`, a failure (the agent
   * stopped answering mid-freeze, a timeout) thaws the guest's filesystems before it is reported.
   */
  async snapshotCreate(
    domain: string,
    snapshotXml: string,
    options: { quiesce: boolean; memory: boolean },
  ): Promise<void> {
    const flags = snapshotFlags(options);
    const what = `snapshot of domain '${domain}'`;
    const prepared = this.prepared.get(domain);
    this.prepared.delete(domain);
    const fits = prepared?.flags === flags.join(' ') && Buffer.byteLength(snapshotXml) <= pipeBuffer;
    if (!fits) prepared?.withdraw(new Error(`${what}: prepared for other flags or a shorter document`));
    try {
      const made = await this.change(
        domain,
        ['virDomainSnapshotCreateXML', '--domain', domain, ...flags],
        what,
        (connection, target) =>
          connection.createSnapshot(
            target,
            snapshotXml,
            snapshotCallFlags(options),
            // A memory state holds the guest's whole RAM: its time grows with the VM.
            options.memory ? undefined : this.timeouts.virshMs,
          ),
      );
      if (made) return;
      const result = fits ? await usePrepared(prepared, snapshotXml, what) : undefined;
      if (result !== undefined) {
        this.succeeded(result, what);
        return;
      }
      await withTempFile('snapshot.xml', snapshotXml, (file) =>
        this.run(
          ['snapshot-create', '--domain', domain, '--xmlfile', file, ...flags],
          what,
          // A memory state holds the guest's whole RAM: its time grows with the VM.
          options.memory ? undefined : this.timeouts.virshMs,
        ),
      );
    } catch (error) {
      if (options.quiesce) await this.thawAfter(domain, error);
      throw error;
    }
  }

  /**
   * Starts what snapshotCreate will need while the caller still checks: on libvirt's own
   * connection, the connection. Otherwise the `snapshot-create` that snapshotCreate will run with
   * the same flags, so that virsh's start, its connection and the domain's lookup happen meanwhile.
   * virsh reads its document from a FIFO in a private folder, which this process holds open for
   * reading and writing: virsh waits until the document is written and the FIFO closed, and a tool
   * that dies first closes it empty (virsh refuses an empty document). Unused (discardSnapshot,
   * other flags) virsh is killed before the FIFO closes. virsh's exit status stays the snapshot's.
   */
  prepareSnapshot(domain: string, options: { quiesce: boolean; memory: boolean }): void {
    // On libvirt's own connection the snapshot is one call: the connection is all there is to
    // start ahead.
    if (this.libvirt !== undefined) {
      void this.libvirtConnection();
      return;
    }
    if (this.prepared.has(domain)) return;
    const flags = snapshotFlags(options);
    let give: (xml: string) => void = () => undefined;
    let withdraw: (error: Error) => void = () => undefined;
    const document = new Promise<string>((resolve, reject) => {
      give = resolve;
      withdraw = reject;
    });
    // Withdrawn before the run took it (its FIFO could not be made): nobody else waits for it.
    document.catch(() => undefined);
    let pid: number | undefined;
    const result = withFifo(this.runner, (fifo, write) =>
      this.runner({
        argv: this.argv(['snapshot-create', '--domain', domain, '--xmlfile', fifo, ...flags]),
        onStart: (started) => {
          pid = started;
        },
        // Its standard input ends once the document is in the FIFO; a withdrawn one kills it.
        input: document.then(async (xml) => {
          await write(xml, pid, options.memory ? undefined : this.timeouts.virshMs);
          return '';
        }),
        ...(options.memory ? {} : { timeoutMs: this.timeouts.virshMs }),
      }),
    );
    // Awaited only when used; a withdrawn run rejects with nobody waiting.
    result.catch(() => undefined);
    this.prepared.set(domain, { flags: flags.join(' '), give, withdraw, result });
  }

  /** The connection on `libvirt`'s socket: the one opened at start-up, else opened now, once. */
  private libvirtConnection(): Promise<LibvirtConnection | undefined> {
    const socket = this.libvirt;
    if (socket === undefined) return Promise.resolve(undefined);
    this.connection ??=
      adoptEarlyConnection(socket.path, this.uri, this.timeouts.virshMs) ??
      LibvirtConnection.open(socket.path, this.uri, this.timeouts.virshMs).catch(() => undefined);
    return this.connection;
  }

  /**
   * A change as one call on libvirt's own connection (`args`: what virsh would run, for --debug and
   * messages). True once libvirt has answered; its error is thrown as a virsh run's would be
   * (`error: MESSAGE`), and a call without answer within its timeout as a virsh timeout. False,
   * with nothing asked of libvirt, when there is no such connection, it is closed, or the domain
   * cannot be looked up on it: the caller runs virsh, whose report is the canonical one.
   */
  private async change(
    domain: string,
    args: readonly string[],
    what: string,
    call: (connection: LibvirtConnection, target: RemoteDomain) => Promise<void>,
  ): Promise<boolean> {
    const connection = await this.libvirtConnection();
    if (connection === undefined) return false;
    let target: RemoteDomain;
    try {
      target = await connection.lookupDomain(domain);
    } catch {
      return false;
    }
    const argv = this.argv(args);
    this.libvirt?.log?.(`+ libvirt> ${args.join(' ')}`);
    try {
      await call(connection, target);
      return true;
    } catch (error) {
      if (error instanceof LibvirtClosedError) return false;
      if (error instanceof LibvirtTimeoutError)
        throw timedOut(new ProgramTimeoutError(argv, error.timeoutMs), what, true);
      const message = error instanceof Error ? error.message : String(error);
      this.succeeded({ argv, exitCode: 1, stdout: '', stderr: `error: ${message}\n` }, what);
      return true;
    }
  }

  /**
   * A hint, never a fact: whether libvirt's QEMU driver on this host has a pid file for the
   * domain (`/run/libvirt/qemu/NAME.pid`, written while it runs), on `qemu:///system` only.
   */
  seemsRunning(domain: string): boolean {
    return (
      this.uri === 'qemu:///system' && !domain.includes('/') && existsSync(`/run/libvirt/qemu/${domain}.pid`)
    );
  }

  /** Kills the snapshot prepared for `domain`, if snapshotCreate did not use it. */
  discardSnapshot(domain: string): void {
    const prepared = this.prepared.get(domain);
    this.prepared.delete(domain);
    prepared?.withdraw(new Error(`the snapshot prepared for domain '${domain}' was not used`));
  }

  /** Thaws the guest's filesystems after a failed quiesced snapshot; says so when that fails too. */
  private async thawAfter(domain: string, failure: unknown): Promise<void> {
    try {
      await this.run(['domfsthaw', '--domain', domain], `thawing the filesystems of domain '${domain}'`);
    } catch (thawError) {
      throw new UserError(
        `${failure instanceof Error ? failure.message : String(failure)}. Thawing its filesystems failed too ` +
          `(${thawError instanceof Error ? thawError.message : String(thawError)}): once the guest agent answers, ` +
          `run: virsh domfsthaw --domain '${domain}'; then: unifi-backup repair '${domain}'`,
        { cause: failure },
      );
    }
  }

  /**
   * `blockpull --base`: copies every layer between base and the active layer into the active layer.
   * Resolves when the job has ended; whether it merged is for the caller to check (a failed pull ends
   * the same way, leaving the chain as it was).
   */
  async blockPull(
    domain: string,
    target: string,
    base: string,
    onProgress: (percent: number) => void,
  ): Promise<void> {
    const what = `block pull of disk ${target} of domain '${domain}'`;
    const args = ['--domain', domain, '--path', target, '--base', base];
    const started = await this.change(domain, ['virDomainBlockRebase', ...args], what, (connection, dom) =>
      connection.blockPull(dom, target, base, this.libvirt?.jobMibPerSecond),
    );
    if (!started) await this.run(['blockpull', ...args], what);
    await this.waitForBlockJob(domain, target, onProgress, false);
  }

  /**
   * `blockcommit --active`, then a pivot once the job is ready: merges the whole chain above base
   * into base and runs from base. A job that ends before it is ready failed: the disk still runs
   * from its top.
   */
  async blockCommit(
    domain: string,
    target: string,
    base: string,
    onProgress: (percent: number) => void,
  ): Promise<void> {
    const what = `block commit of disk ${target} of domain '${domain}'`;
    const args = ['--domain', domain, '--path', target, '--base', base, '--active'];
    const started = await this.change(domain, ['virDomainBlockCommit', ...args], what, (connection, dom) =>
      connection.blockCommit(dom, target, base, blockCommitActive, this.libvirt?.jobMibPerSecond),
    );
    if (!started) await this.run(['blockcommit', ...args], what);
    for (;;) {
      if (!(await this.waitForBlockJob(domain, target, onProgress, true)))
        throw new UserError(
          `${what} ended before it was ready (it failed or was cancelled): the disk still runs from its ` +
            `top and nothing was deleted. Check the domain's log, then run: unifi-backup repair '${domain}'`,
        );
      try {
        await this.blockJobPivot(domain, target);
        return;
      } catch (error) {
        // Ready can be lost again while the guest writes; the job then converges once more.
        if (!(error instanceof ProcessError && /not ready/i.test(error.stderr))) throw error;
      }
    }
  }

  /**
   * Polls the disk's block job, reporting progress, until it is gone (false) or, with `untilReady`,
   * ready for a pivot (true). virsh's own --wait checks every 500 ms, which is most of the time of a
   * small job; polling starts at 20 ms and backs off to 100 ms, but asks again when the job's rate
   * says it will end (nextPollDelay, at least 10 ms apart): each poll is a question to the virsh
   * shell (no process), and a job's end is seen within about 10 ms.
   * A job whose progress has not moved for the stall timeout is aborted (the disk keeps running
   * from the layer it ran from before the job) and reported.
   */
  private async waitForBlockJob(
    domain: string,
    target: string,
    onProgress: (percent: number) => void,
    untilReady: boolean,
  ): Promise<boolean> {
    let unreachableSince: number | undefined;
    let progress = { cur: -1, since: Date.now() };
    let last: JobSample | undefined;
    for (let delay = 20; ;) {
      let job: BlockJobInfo | undefined;
      try {
        job = await this.blockJobInfo(domain, target);
        unreachableSince = undefined;
      } catch (error) {
        // libvirtd restarting: the job goes on inside QEMU, and libvirtd finds it again when it is back.
        unreachableSince ??= Date.now();
        if (!(error instanceof ConnectionError) || Date.now() - unreachableSince > reconnectMs) throw error;
        await sleep(delay);
        continue;
      }
      if (job === undefined) return false;
      if (job.end > 0) onProgress(blockJobPercent(job));
      if (untilReady && job.ready) return true;
      if (job.cur !== progress.cur) progress = { cur: job.cur, since: Date.now() };
      else if (Date.now() - progress.since >= this.timeouts.blockJobStallMs)
        await this.abortStalled(domain, target, job);
      const sample = { cur: job.cur, end: job.end, at: Date.now() };
      delay = nextPollDelay(last, sample, delay);
      last = sample;
      await sleep(delay);
    }
  }

  private async abortStalled(domain: string, target: string, job: BlockJobInfo): Promise<never> {
    const stalled = this.timeouts.blockJobStallMs / 1000;
    await this.blockJobAbort(domain, target);
    throw new BlockJobStalledError(
      `${job.type} of disk ${target} of domain '${domain}' made no progress for ${stalled} s ` +
        `(${job.cur} of ${job.end} bytes), so it was aborted: the disk runs from the layer it ran from before ` +
        `the job, the VM keeps running and nothing was deleted. Check the host's storage (dmesg, df -h) and ` +
        `the domain's log, then run: unifi-backup repair '${domain}' (raise timeouts.block-job-stall in ` +
        `config.yaml if the storage is only slow).`,
    );
  }

  /** True when the guest agent answers a ping within the guest-agent timeout. */
  async agentResponds(domain: string): Promise<boolean> {
    const seconds = Math.max(1, Math.round(this.timeouts.guestAgentMs / 1000));
    const result = await this.call(
      ['qemu-agent-command', '--domain', domain, '--timeout', String(seconds), '{"execute":"guest-ping"}'],
      `asking the guest agent of domain '${domain}'`,
      // virsh itself may hang (libvirtd): bounded like any virsh run, on top of the agent's time.
      this.timeouts.guestAgentMs + this.timeouts.virshMs,
    );
    return result.exitCode === 0;
  }

  /**
   * The block job on a disk (on the connection, or parsed from `virsh blockjob --info --raw`);
   * undefined when none.
   */
  async blockJobInfo(domain: string, target: string): Promise<BlockJobInfo | undefined> {
    const remote = await this.read(
      ['virDomainGetBlockJobInfo', '--domain', domain, '--path', target],
      `block job of disk ${target} of domain '${domain}'`,
      async (connection) => {
        const job = await connection.blockJobInfo(await connection.lookupDomain(domain), target);
        return { job: job === undefined ? undefined : blockJobOf(job) };
      },
    );
    if (remote !== undefined) return remote.job;
    const out = await this.query(
      ['blockjob', '--domain', domain, '--path', target, '--info', '--raw'],
      `block job of disk ${target} of domain '${domain}'`,
    );
    return parseBlockJobInfo(out);
  }

  /** Ends a ready active block commit by switching the disk to the commit's base. */
  async blockJobPivot(domain: string, target: string): Promise<void> {
    const what = `pivot of disk ${target} of domain '${domain}'`;
    const args = ['--domain', domain, '--path', target, '--pivot'];
    const pivoted = await this.change(domain, ['virDomainBlockJobAbort', ...args], what, (connection, dom) =>
      connection.blockJobAbort(dom, target, blockJobAbortPivot),
    );
    if (!pivoted) await this.run(['blockjob', ...args], what);
  }

  /** Cancels a block job; the disk keeps running from the layer it ran from before the job. */
  async blockJobAbort(domain: string, target: string): Promise<void> {
    await this.run(
      ['blockjob', '--domain', domain, '--path', target, '--abort'],
      `aborting the block job of disk ${target} of domain '${domain}'`,
    );
  }

  /** Pauses the vCPUs (`resume` runs them again). */
  async suspend(domain: string): Promise<void> {
    await this.run(['suspend', '--domain', domain], `pausing domain '${domain}'`);
  }

  async resume(domain: string): Promise<void> {
    await this.run(['resume', '--domain', domain], `resuming domain '${domain}'`);
  }
}

/**
 * A virsh run's timeout (or, with `libvirt`, a call's on the tool's own connection, which is then
 * closed) as the error that names `what`; any other error as it is.
 */
function timedOut(error: unknown, what: string, libvirt = false): unknown {
  if (!(error instanceof ProgramTimeoutError)) return error;
  const seconds = error.timeoutMs / 1000;
  const stopped = libvirt
    ? `libvirt did not answer within ${seconds} s, so the tool gave up on it`
    : `virsh did not answer within ${seconds} s and was stopped`;
  return new ProgramTimeoutError(
    error.argv,
    error.timeoutMs,
    `${what}: ${stopped} (libvirtd busy or hung?). ` +
      `Check that libvirtd answers (virsh list --all); if it is only slow, raise timeouts.virsh in config.yaml. ` +
      `Then run again.`,
  );
}

/** A state as `dominfo` and `domstate` word it. */
function runStateOf(state: string): RunState {
  return state === 'running' || state === 'paused' || state === 'shut off' ? state : 'other';
}

/** virDomainState's values as `domstate` words them. */
const stateWords = [
  'no state',
  'running',
  'idle',
  'paused',
  'in shutdown',
  'shut off',
  'crashed',
  'pmsuspended',
];

function stateWord(state: number): string {
  return stateWords[state] ?? 'no state';
}

/** virDomainBlockJobType's values as `virsh blockjob` names them. */
const blockJobTypes = [
  'Unknown job',
  'Block Pull',
  'Block Copy',
  'Block Commit',
  'Active Block Commit',
  'Backup',
];

/** A block job from the connection as parseBlockJobInfo reads it from virsh. */
function blockJobOf(job: RemoteBlockJob): BlockJobInfo {
  const { cur, end } = job;
  return { type: blockJobTypes[job.type] ?? 'Unknown job', cur, end, ready: end > 0 && cur === end };
}

/** The calls that answer `dominfo`'s questions, for --debug. */
const infoCalls = ['virDomainGetState', 'virDomainIsPersistent', 'virDomainHasManagedSaveImage'];

/** virDomainGetXMLDesc of a flavour of definition, for --debug. */
function xmlCall(flavour: XmlFlavour): string {
  return `virDomainGetXMLDesc(${flavour})`;
}

/** virDomainGetXMLDesc's flags for a flavour of definition. */
function xmlFlags(flavour: XmlFlavour): number {
  return flavour === 'live' ? 0 : domainXmlFlags[flavour];
}

/** A UUID as libvirt prints it: lower-case hex in 8-4-4-4-12 groups. */
function uuidText(uuid: Buffer): string {
  const hex = uuid.toString('hex');
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join('-');
}

/**
 * Domains in the order `virsh list` prints them: running ones by ID, then the others by name,
 * compared case-insensitively character by character.
 */
export function inVirshOrder(domains: readonly RemoteDomain[]): RemoteDomain[] {
  const caseless = (a: string, b: string): number => {
    const x = a.toLowerCase();
    const y = b.toLowerCase();
    // Equal so far, both strings stand at the same index: a code point at a time.
    for (let i = 0; i < x.length && i < y.length;) {
      const cx = x.codePointAt(i) ?? 0;
      const cy = y.codePointAt(i) ?? 0;
      if (cx !== cy) return cx - cy;
      i += cx > 0xffff ? 2 : 1;
    }
    return x.length - y.length;
  };
  return [...domains].sort((a, b) => {
    const activeA = a.id !== -1;
    const activeB = b.id !== -1;
    if (activeA && activeB) return a.id - b.id;
    if (activeA !== activeB) return activeA ? -1 : 1;
    return caseless(a.name, b.name);
  });
}

function parseDomInfo(out: string, domain: string): DomainInfo {
  const fields = new Map<string, string>();
  for (const line of out.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return {
    name: fields.get('Name') ?? domain,
    uuid: fields.get('UUID') ?? '',
    runState: runStateOf(fields.get('State') ?? ''),
    persistent: fields.get('Persistent') === 'yes',
    managedSave: fields.get('Managed save') === 'yes',
  };
}

/** What a domain is, by the UUIDs in each filtered list; see listFilters. */
interface DomainKind {
  readonly persistent: boolean;
  readonly managedSave: boolean;
  readonly listedShutOff: boolean;
}

/**
 * The kind of each domain from the UUIDs of five filtered lists: persistent, transient, with and
 * without a managed save, shut off. A UUID that is not in exactly one list of each pair (a list
 * failed, or the domain changed between two lists) has no kind.
 */
function domainKinds(lists: readonly (readonly string[])[]): {
  kindOf(uuid: string): DomainKind | undefined;
} {
  const [persistent, transient, saved, unsaved, shutOff] = lists.map((uuids) => new Set(uuids));
  const oneOf = (uuid: string, yes: Set<string> | undefined, no: Set<string> | undefined) =>
    yes?.has(uuid) === true ? no?.has(uuid) !== true : no?.has(uuid) === true ? false : undefined;
  return {
    kindOf(uuid) {
      const isPersistent = oneOf(uuid, persistent, transient);
      const managedSave = oneOf(uuid, saved, unsaved);
      if (isPersistent === undefined || managedSave === undefined) return undefined;
      return { persistent: isPersistent, managedSave, listedShutOff: shutOff?.has(uuid) === true };
    },
  };
}

/** The targets of a definition's disks; none when it does not parse (each is then asked alone). */
function diskTargets(xml: string): string[] {
  try {
    return parseDomainXml(xml)
      .disks.filter((disk) => disk.device === 'disk')
      .map((disk) => disk.target);
  } catch {
    return [];
  }
}

/**
 * One domain's batched sections, or undefined unless every read succeeded. A persistent domain
 * listed as shut off whose `domstate` says otherwise (it started meanwhile) has no persistent
 * definition read: it is read alone.
 */
function definitionsOf(
  domain: { name: string; uuid: string; persistent: boolean; managedSave: boolean },
  [state, live, inactive]: readonly string[],
): MutableDefinitions | undefined {
  const isXml = (xml: string | undefined): xml is string => xml?.trimStart().startsWith('<domain') === true;
  const stateLine = state?.trim().split('\n')[0] ?? '';
  if (stateLine === '' || !isXml(live)) return undefined;
  const runState = runStateOf(stateLine);
  const persistent = inactive ?? (domain.persistent && runState !== 'shut off' ? undefined : live);
  if (!isXml(persistent)) return undefined;
  const { name, uuid, managedSave } = domain;
  return {
    info: { name, uuid, runState, persistent: domain.persistent, managedSave },
    live,
    inactive: persistent,
  };
}

export interface BlockJobInfo {
  /** As virsh names it: `Block Pull`, `Block Commit`, `Active Block Commit`, `Block Copy`… */
  readonly type: string;
  readonly cur: number;
  readonly end: number;
  /** All data copied: an active commit or a copy waits for a pivot or an abort. */
  readonly ready: boolean;
}

/** How far a block job has copied, in whole percent (0 while its length is unknown). */
export function blockJobPercent(job: BlockJobInfo): number {
  return job.end > 0 ? Math.floor((job.cur / job.end) * 100) : 0;
}

export function parseBlockJobInfo(out: string): BlockJobInfo | undefined {
  const fields = new Map<string, string>();
  for (const line of out.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  if (type === undefined) return undefined;
  const cur = Number(fields.get('cur') ?? 0);
  const end = Number(fields.get('end') ?? 0);
  return { type, cur, end, ready: end > 0 && cur === end };
}

/** Gives a prepared snapshot its document: virsh's result, or undefined when it never started. */
async function usePrepared(
  prepared: PreparedSnapshot,
  snapshotXml: string,
  what: string,
): Promise<ProgramResult | undefined> {
  prepared.give(snapshotXml);
  try {
    return await prepared.result;
  } catch (error) {
    throw timedOut(error, what);
  }
}

/**
 * Writes a document into the FIFO once process `pid` reads it, waiting up to `timeoutMs` for that
 * (undefined: as long as it takes).
 */
type FifoWrite = (text: string, pid: number | undefined, timeoutMs: number | undefined) => Promise<void>;

/** What one write to a FIFO always takes whole and at once (PIPE_BUF, and the least a pipe holds). */
const pipeBuffer = 4096;

/**
 * A FIFO in a private folder for `use`, held open for reading and writing: opening it does not wait
 * for a reader, and its reader's end of file comes only when this process closes it (or dies).
 * `write` puts a document of at most `pipeBuffer` bytes into it and closes it, once the reading
 * process `pid` has the FIFO open (a FIFO closed by its last holder loses what it held) or has
 * ended; a reader that has not opened it within `timeoutMs` is a timeout. Both are removed when
 * `use` has settled. Undefined, and `use` not called, when the FIFO cannot be made.
 */
async function withFifo<T>(
  runner: Runner,
  use: (fifo: string, write: FifoWrite) => Promise<T>,
): Promise<T | undefined> {
  let dir: string;
  let fd: number | undefined;
  let fifo: string;
  try {
    dir = await mkdtemp(path.join(os.tmpdir(), 'unifi-backup-'));
    fifo = path.join(dir, 'snapshot.xml');
  } catch {
    return undefined;
  }
  const close = () => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  };
  try {
    try {
      await runChecked(runner, { argv: ['mkfifo', '--mode', '600', fifo] }, 'making a FIFO');
      fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    } catch {
      return undefined;
    }
    return await use(fifo, async (text, pid, timeoutMs) => {
      const bytes = Buffer.from(text);
      if (bytes.length > pipeBuffer)
        throw new InternalError(`a document of ${bytes.length} bytes for a FIFO`);
      const since = Date.now();
      while (pid !== undefined && holdsOpen(pid, fifo) === false) {
        // virsh is still starting or connecting: as long as a virsh run may take.
        if (timeoutMs !== undefined && Date.now() - since > timeoutMs)
          throw new ProgramTimeoutError(['virsh', 'snapshot-create'], timeoutMs);
        await sleep(2);
      }
      if (fd === undefined || writeSync(fd, bytes) !== bytes.length)
        throw new InternalError(`the FIFO ${fifo} did not take ${bytes.length} bytes`);
      close();
    });
  } finally {
    close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether process `pid` has `file` open; undefined once it has no open files (it ended). */
function holdsOpen(pid: number, file: string): boolean | undefined {
  const folder = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = readdirSync(folder);
  } catch {
    return undefined;
  }
  if (fds.length === 0) return undefined;
  return fds.some((fd) => {
    try {
      return readlinkSync(path.join(folder, fd)) === file;
    } catch {
      return false;
    }
  });
}

async function withTempFile<T>(name: string, content: string, use: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'unifi-backup-'));
  try {
    const file = path.join(dir, name);
    await writeFile(file, content, { mode: 0o600 });
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
