import { existsSync } from 'node:fs';
import net from 'node:net';

/**
 * A minimal client of libvirt's own RPC protocol (`src/rpc/virnetprotocol.x`,
 * `src/remote/remote_protocol.x`) on the local daemon's UNIX socket: the few calls a backup needs,
 * made on one connection instead of by a virsh process each. Its questions: the domains, their
 * run state, persistence, managed save and definitions, a disk's block job. Its changes: the
 * snapshot, the start of a block pull or active commit, the pivot. Every message is a big-endian
 * length word (counting itself), a 24-byte header and an XDR payload.
 *
 * Imports nothing but node's own modules: bin.ts loads this before the rest of the tool.
 */

const remoteProgram = 0x20008086;
const keepaliveProgram = 0x6b656570;
const protocolVersion = 1;
const procedures = {
  connectOpen: 1,
  getXmlDesc: 14,
  lookupByName: 23,
  authList: 66,
  isPersistent: 151,
  hasManagedSaveImage: 183,
  snapshotCreateXml: 185,
  getState: 212,
  blockJobAbort: 237,
  getBlockJobInfo: 238,
  blockRebase: 266,
  listAllDomains: 273,
  blockCommit: 290,
} as const;
const keepalivePing = 1;
const keepalivePong = 2;
const messageType = { call: 0, reply: 1, message: 2 } as const;
const status = { ok: 0, error: 1 } as const;
const authNone = 0;
/** virnetprotocol.x VIR_NET_MESSAGE_MAX: no message of libvirt's is longer. */
const messageMax = 33_554_432;
const headerBytes = 24;

/** The flags of virDomainSnapshotCreateXML (libvirt-domain-snapshot.h). */
export const snapshotCreateFlags = { noMetadata: 4, diskOnly: 16, quiesce: 64, atomic: 128 } as const;
/** VIR_DOMAIN_BLOCK_COMMIT_ACTIVE: a commit of the active layer, which waits for a pivot. */
export const blockCommitActive = 4;
/** VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT: ends a ready commit by switching the disk to its base. */
export const blockJobAbortPivot = 2;
/** The flags of virConnectListAllDomains (libvirt-domain.h) that the tool filters by. */
export const listDomainsFlags = {
  persistent: 4,
  transient: 8,
  shutOff: 64,
  managedSave: 256,
  noManagedSave: 512,
  hasSnapshot: 4096,
} as const;
/** The flags of virDomainGetXMLDesc: the persistent definition, and the one for a migration. */
export const domainXmlFlags = { inactive: 2, migratable: 8 } as const;

/** A disk's block job as virDomainGetBlockJobInfo gives it (`type`: virDomainBlockJobType). */
export interface RemoteBlockJob {
  readonly type: number;
  readonly cur: number;
  readonly end: number;
}

/**
 * The local daemon's read-write socket for `qemu:///system`: virtqemud's where the daemons are
 * split, libvirtd's otherwise; undefined for any other URI (virsh knows how to reach those).
 */
export function daemonSocket(uri: string): string | undefined {
  if (uri !== 'qemu:///system') return undefined;
  return ['/run/libvirt/virtqemud-sock', '/run/libvirt/libvirt-sock'].find((file) => existsSync(file));
}

/** libvirt answered a call with an error: its code (virterror.h) and message, as virsh prints them. */
export class LibvirtError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The connection failed, closed, or was answered outside the protocol. */
export class LibvirtConnectionError extends Error {}

/** The connection was already closed: the call was never sent, so libvirt did nothing. */
export class LibvirtClosedError extends LibvirtConnectionError {}

/** A call outlived its timeout: the connection is closed, and libvirt may still carry it out. */
export class LibvirtTimeoutError extends LibvirtConnectionError {
  constructor(readonly timeoutMs: number) {
    super(`libvirt did not answer within ${timeoutMs / 1000} s`);
  }
}

/** A domain as the protocol names it (remote_nonnull_domain). */
export interface RemoteDomain {
  readonly name: string;
  readonly uuid: Buffer;
  readonly id: number;
}

/** XDR encoding of the few types the calls use: 4-byte words, strings padded to 4 bytes. */
class XdrWriter {
  private readonly parts: Buffer[] = [];

  uint(value: number): this {
    const word = Buffer.alloc(4);
    word.writeUInt32BE(value >>> 0);
    this.parts.push(word);
    return this;
  }

  int(value: number): this {
    const word = Buffer.alloc(4);
    word.writeInt32BE(value);
    this.parts.push(word);
    return this;
  }

  string(value: string): this {
    const bytes = Buffer.from(value, 'utf8');
    this.uint(bytes.length);
    this.parts.push(bytes, Buffer.alloc((4 - (bytes.length % 4)) % 4));
    return this;
  }

  /** An XDR optional (`remote_string`): a boolean word, then the string when present. */
  optionalString(value: string | undefined): this {
    return value === undefined ? this.uint(0) : this.uint(1).string(value);
  }

  domain(domain: RemoteDomain): this {
    this.string(domain.name);
    this.parts.push(domain.uuid);
    return this.int(domain.id);
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

class XdrReader {
  private offset = 0;
  constructor(private readonly buffer: Buffer) {}

  private take(bytes: number): Buffer {
    if (this.offset + bytes > this.buffer.length)
      throw new LibvirtConnectionError('libvirt sent a message shorter than its content');
    const slice = this.buffer.subarray(this.offset, this.offset + bytes);
    this.offset += bytes;
    return slice;
  }

  uint(): number {
    return this.take(4).readUInt32BE(0);
  }

  int(): number {
    return this.take(4).readInt32BE(0);
  }

  /** An unsigned hyper: exact up to 2^53 (8 PiB), more than any disk's byte count. */
  hyper(): number {
    const high = this.uint();
    return high * 2 ** 32 + this.uint();
  }

  string(): string {
    const length = this.uint();
    const text = this.take(length).toString('utf8');
    this.take((4 - (length % 4)) % 4);
    return text;
  }

  /** An array's length, checked against what is left: each element takes at least `bytesEach`. */
  count(bytesEach: number): number {
    const count = this.uint();
    if (count * bytesEach > this.buffer.length - this.offset)
      throw new LibvirtConnectionError(`libvirt sent a list of ${count} items in a shorter message`);
    return count;
  }

  optionalString(): string | undefined {
    return this.uint() === 0 ? undefined : this.string();
  }

  domain(): RemoteDomain {
    return { name: this.string(), uuid: Buffer.from(this.take(16)), id: this.int() };
  }
}

interface Pending {
  readonly resolve: (payload: Buffer) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * One connection to the local libvirt daemon. It keeps the process alive only while it connects
 * and while a call waits for its answer; `close` ends it.
 */
export class LibvirtConnection {
  private serial = 0;
  private received: Buffer = Buffer.alloc(0);
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private timeoutMs: number,
    /** False for a connection opened early, until it is adopted: it never keeps the process alive. */
    private holdsProcess: boolean,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.receive(chunk);
    });
    socket.on('error', (error) => {
      this.fail(new LibvirtConnectionError(`the connection to libvirt failed: ${error.message}`));
    });
    socket.on('close', () => {
      this.fail(new LibvirtConnectionError('libvirt closed the connection'));
    });
    // Referenced while it connects and while a call waits (`call`, `settle`): a promise awaiting
    // the connection must not see the process end because nothing else kept it alive.
    if (!holdsProcess) socket.unref();
  }

  /**
   * Connects to the daemon's socket and opens `uri` as a client that needs no authentication
   * (root on the read-write socket: libvirt lets it in when it lists the methods). Rejects when
   * libvirt asks for any (polkit, SASL): the caller then runs virsh, which knows them all.
   */
  static async open(
    socketPath: string,
    uri: string,
    timeoutMs: number,
    options: { readonly early?: boolean } = {},
  ): Promise<LibvirtConnection> {
    const socket = net.createConnection({ path: socketPath });
    const connection = new LibvirtConnection(socket, timeoutMs, options.early !== true);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve).once('error', reject);
      });
      const methods = new XdrReader(await connection.call(procedures.authList, Buffer.alloc(0), timeoutMs));
      const count = methods.uint();
      if (count > 0 && methods.int() !== authNone)
        throw new LibvirtConnectionError(`libvirt at ${socketPath} asks this user to authenticate`);
      await connection.call(
        procedures.connectOpen,
        new XdrWriter().optionalString(uri).uint(0).toBuffer(),
        timeoutMs,
      );
      return connection;
    } catch (error) {
      connection.close();
      throw error;
    }
  }

  /**
   * Takes over a connection opened early: from now on it keeps the process alive while a call
   * waits, and a call waits at most `timeoutMs` (the configured timeout).
   */
  adopt(timeoutMs: number): void {
    this.timeoutMs = timeoutMs;
    this.holdsProcess = true;
    for (const waiting of this.pending.values()) waiting.timer?.ref();
    if (this.pending.size > 0) this.socket.ref();
  }

  async lookupDomain(name: string): Promise<RemoteDomain> {
    const reply = await this.call(
      procedures.lookupByName,
      new XdrWriter().string(name).toBuffer(),
      this.timeoutMs,
    );
    return new XdrReader(reply).domain();
  }

  /** virConnectListAllDomains, filtered by `flags` (listDomainsFlags; 0: every domain). */
  async listAllDomains(flags: number): Promise<RemoteDomain[]> {
    const args = new XdrWriter().int(1).uint(flags).toBuffer();
    const reply = new XdrReader(await this.call(procedures.listAllDomains, args, this.timeoutMs));
    // remote_nonnull_domain: a name (4 bytes at least), a 16-byte UUID, an ID.
    return Array.from({ length: reply.count(24) }, () => reply.domain());
  }

  /** virDomainGetState: the state (virDomainState: 1 running, 3 paused, 5 shut off…). */
  async domainState(domain: RemoteDomain): Promise<number> {
    const args = new XdrWriter().domain(domain).uint(0).toBuffer();
    return new XdrReader(await this.call(procedures.getState, args, this.timeoutMs)).int();
  }

  /** virDomainGetXMLDesc with `flags` (domainXmlFlags; 0: the live definition). */
  async domainXml(domain: RemoteDomain, flags: number): Promise<string> {
    const args = new XdrWriter().domain(domain).uint(flags).toBuffer();
    return new XdrReader(await this.call(procedures.getXmlDesc, args, this.timeoutMs)).string();
  }

  async isPersistent(domain: RemoteDomain): Promise<boolean> {
    const args = new XdrWriter().domain(domain).toBuffer();
    return new XdrReader(await this.call(procedures.isPersistent, args, this.timeoutMs)).int() === 1;
  }

  async hasManagedSave(domain: RemoteDomain): Promise<boolean> {
    const args = new XdrWriter().domain(domain).uint(0).toBuffer();
    return new XdrReader(await this.call(procedures.hasManagedSaveImage, args, this.timeoutMs)).int() === 1;
  }

  /** virDomainGetBlockJobInfo of `disk` (a target or a path); undefined when it has no job. */
  async blockJobInfo(domain: RemoteDomain, disk: string): Promise<RemoteBlockJob | undefined> {
    const args = new XdrWriter().domain(domain).string(disk).uint(0).toBuffer();
    const reply = new XdrReader(await this.call(procedures.getBlockJobInfo, args, this.timeoutMs));
    const found = reply.int();
    const type = reply.int();
    reply.hyper();
    const job = { type, cur: reply.hyper(), end: reply.hyper() };
    return found === 1 ? job : undefined;
  }

  /** virDomainSnapshotCreateXML; `timeoutMs` undefined: waits as long as libvirt takes. */
  async createSnapshot(domain: RemoteDomain, xml: string, flags: number, timeoutMs?: number): Promise<void> {
    const args = new XdrWriter().domain(domain).string(xml).uint(flags).toBuffer();
    await this.call(procedures.snapshotCreateXml, args, timeoutMs);
  }

  /**
   * virDomainBlockCommit of `disk` down to `base` (a path; the top is the active layer), at most
   * `mibPerSecond` (0: unlimited).
   */
  async blockCommit(
    domain: RemoteDomain,
    disk: string,
    base: string,
    flags: number,
    mibPerSecond = 0,
  ): Promise<void> {
    const args = new XdrWriter()
      .domain(domain)
      .string(disk)
      .optionalString(base)
      .optionalString(undefined)
      .uint(0)
      .uint(mibPerSecond)
      .uint(flags)
      .toBuffer();
    await this.call(procedures.blockCommit, args, this.timeoutMs);
  }

  /**
   * virDomainBlockRebase of `disk` onto `base` (a path), no flags: a pull of every layer above it,
   * at most `mibPerSecond` (0: unlimited).
   */
  async blockPull(domain: RemoteDomain, disk: string, base: string, mibPerSecond = 0): Promise<void> {
    const args = new XdrWriter()
      .domain(domain)
      .string(disk)
      .optionalString(base)
      .uint(0)
      .uint(mibPerSecond)
      .uint(0)
      .toBuffer();
    await this.call(procedures.blockRebase, args, this.timeoutMs);
  }

  /** virDomainBlockJobAbort of the job on `disk`, with `flags` (the pivot). */
  async blockJobAbort(domain: RemoteDomain, disk: string, flags: number): Promise<void> {
    const args = new XdrWriter().domain(domain).string(disk).uint(flags).toBuffer();
    await this.call(procedures.blockJobAbort, args, this.timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }

  /** One call and its answer's payload; `timeoutMs` undefined: no timeout. */
  private call(procedure: number, args: Buffer, timeoutMs: number | undefined): Promise<Buffer> {
    if (this.failure !== undefined)
      return Promise.reject(new LibvirtClosedError(`the call was not sent: ${this.failure.message}`));
    const serial = ++this.serial;
    return new Promise<Buffer>((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.fail(new LibvirtTimeoutError(timeoutMs));
            }, timeoutMs);
      this.pending.set(serial, { resolve, reject, timer });
      if (this.holdsProcess) this.socket.ref();
      else timer?.unref();
      this.send(remoteProgram, procedure, messageType.call, serial, args);
    });
  }

  private send(program: number, procedure: number, type: number, serial: number, payload: Buffer): void {
    const header = new XdrWriter()
      .uint(headerBytes + 4 + payload.length)
      .uint(program)
      .uint(protocolVersion)
      .int(procedure)
      .int(type)
      .uint(serial)
      .int(status.ok)
      .toBuffer();
    this.socket.write(Buffer.concat([header, payload]));
  }

  private receive(chunk: Buffer): void {
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
    while (this.received.length >= 4) {
      const length = this.received.readUInt32BE(0);
      if (length < 4 + headerBytes || length > messageMax + 4) {
        this.fail(
          new LibvirtConnectionError(`libvirt sent a message of ${length} bytes, outside its protocol`),
        );
        return;
      }
      if (this.received.length < length) return;
      const message = this.received.subarray(4, length);
      this.received = this.received.subarray(length);
      try {
        this.dispatch(message);
      } catch (error) {
        this.fail(error instanceof Error ? error : new LibvirtConnectionError(String(error)));
        return;
      }
    }
  }

  private dispatch(message: Buffer): void {
    const header = new XdrReader(message.subarray(0, headerBytes));
    const program = header.uint();
    header.uint();
    const procedure = header.int();
    const type = header.int();
    const serial = header.uint();
    const outcome = header.int();
    const payload = message.subarray(headerBytes);
    if (program === keepaliveProgram && procedure === keepalivePing && type === messageType.message) {
      this.send(keepaliveProgram, keepalivePong, messageType.message, 0, Buffer.alloc(0));
      return;
    }
    if (program !== remoteProgram || type !== messageType.reply) return;
    const waiting = this.pending.get(serial);
    if (waiting === undefined) return;
    this.settle(serial, waiting);
    if (outcome === status.ok) waiting.resolve(payload);
    else if (outcome === status.error) waiting.reject(errorOf(payload));
    else
      waiting.reject(
        new LibvirtConnectionError(`libvirt answered with status ${outcome}, outside its protocol`),
      );
  }

  private settle(serial: number, waiting: Pending): void {
    clearTimeout(waiting.timer);
    this.pending.delete(serial);
    if (this.pending.size === 0) this.socket.unref();
  }

  /** Ends the connection: every call waiting for its answer rejects with `error`. */
  private fail(error: Error): void {
    this.failure ??= error;
    for (const [serial, waiting] of this.pending) {
      this.settle(serial, waiting);
      waiting.reject(error);
    }
    this.socket.destroy();
  }
}

/** A connection opened at start-up, until the first caller on the same socket and URI takes it. */
let early:
  | {
      readonly socketPath: string;
      readonly uri: string;
      readonly connection: Promise<LibvirtConnection | undefined>;
    }
  | undefined;

/**
 * Opens the connection to the local daemon before the tool's modules load, so that its start
 * overlaps with theirs; false (nothing started) when `uri` has no local socket of the tool's own.
 * A connection nobody takes never keeps the tool running.
 */
export function openLibvirtEarly(
  uri: string,
  timeoutMs: number,
  socketPath: string | undefined = daemonSocket(uri),
): boolean {
  if (socketPath === undefined) return false;
  const connection = LibvirtConnection.open(socketPath, uri, timeoutMs, { early: true }).catch(
    () => undefined,
  );
  early = { socketPath, uri, connection };
  return true;
}

/**
 * The connection opened early for the same socket and URI, handed over once; from then on its
 * calls wait at most `timeoutMs`. Undefined when none was opened early for them (the caller opens
 * its own); a promise of undefined when it was and failed (the caller does without).
 */
export function adoptEarlyConnection(
  socketPath: string,
  uri: string,
  timeoutMs: number,
): Promise<LibvirtConnection | undefined> | undefined {
  const started = early;
  early = undefined;
  if (started === undefined) return undefined;
  if (started.socketPath !== socketPath || started.uri !== uri) {
    void started.connection.then((connection) => connection?.close());
    return undefined;
  }
  // Still opening, it holds nothing alive: the wait for it must.
  const hold = setInterval(() => undefined, 2 ** 30);
  return started.connection.then((connection) => {
    clearInterval(hold);
    connection?.adopt(timeoutMs);
    return connection;
  });
}

/** remote_error: its code and message (the rest names objects the message already names). */
function errorOf(payload: Buffer): LibvirtError {
  const reader = new XdrReader(payload);
  const code = reader.int();
  reader.int();
  return new LibvirtError(code, reader.optionalString() ?? `libvirt error ${code}`);
}
