import net from 'node:net';

/**
 * A minimal client of libvirt's own RPC protocol (`src/rpc/virnetprotocol.x`,
 * `src/remote/remote_protocol.x`) on the local daemon's UNIX socket: the few calls a backup's
 * changes need (snapshot, block pull, active commit, pivot), made on one connection instead of by
 * a virsh process each. Every message is a
 * big-endian length word (counting itself), a 24-byte header and an XDR payload.
 */

const remoteProgram = 0x20008086;
const keepaliveProgram = 0x6b656570;
const protocolVersion = 1;
const procedures = {
  connectOpen: 1,
  lookupByName: 23,
  authList: 66,
  snapshotCreateXml: 185,
  blockJobAbort: 237,
  blockRebase: 266,
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

  string(): string {
    const length = this.uint();
    const text = this.take(length).toString('utf8');
    this.take((4 - (length % 4)) % 4);
    return text;
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
    private readonly timeoutMs: number,
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
  }

  /**
   * Connects to the daemon's socket and opens `uri` as a client that needs no authentication
   * (root on the read-write socket: libvirt lets it in when it lists the methods). Rejects when
   * libvirt asks for any (polkit, SASL): the caller then runs virsh, which knows them all.
   */
  static async open(socketPath: string, uri: string, timeoutMs: number): Promise<LibvirtConnection> {
    const socket = net.createConnection({ path: socketPath });
    const connection = new LibvirtConnection(socket, timeoutMs);
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

  async lookupDomain(name: string): Promise<RemoteDomain> {
    const reply = await this.call(
      procedures.lookupByName,
      new XdrWriter().string(name).toBuffer(),
      this.timeoutMs,
    );
    return new XdrReader(reply).domain();
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
      this.socket.ref();
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

/** remote_error: its code and message (the rest names objects the message already names). */
function errorOf(payload: Buffer): LibvirtError {
  const reader = new XdrReader(payload);
  const code = reader.int();
  reader.int();
  return new LibvirtError(code, reader.optionalString() ?? `libvirt error ${code}`);
}
