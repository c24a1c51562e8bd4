import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  adoptEarlyConnection,
  LibvirtConnection,
  LibvirtConnectionError,
  LibvirtError,
  LibvirtTimeoutError,
  openLibvirtEarly,
} from '../../src/host/libvirtrpc.js';
import type { ProgramRequest, ProgramResult } from '../../src/host/runner.js';
import { Virsh } from '../../src/host/virsh.js';
import {
  admitting,
  domainStruct,
  errorPayload,
  fakeDaemon,
  message,
  remote,
  uuid,
  word,
  xdrString,
} from './fake-libvirtd.js';

describe('LibvirtConnection', () => {
  it('lists the methods, opens the URI, looks a domain up and creates a snapshot with its flags', async () => {
    const daemon = await fakeDaemon(
      admitting((call) =>
        call.proc === 185
          ? message(remote, 185, 1, call.serial, 0, Buffer.concat([xdrString('s1'), domainStruct]))
          : undefined,
      ),
      { ping: true, bytewise: true },
    );
    const connection = await LibvirtConnection.open(daemon.socket, 'qemu:///system', 5000);
    const domain = await connection.lookupDomain('vm one');
    expect(domain).toEqual({ name: 'vm one', uuid, id: 7 });
    await connection.createSnapshot(domain, '<domainsnapshot/>', 4 | 16 | 128, 5000);
    connection.close();

    expect(daemon.calls.map((c) => c.proc)).toEqual([66, 1, 23, 185]);
    expect(daemon.calls.map((c) => c.serial)).toEqual([1, 2, 3, 4]);
    // remote_connect_open_args: an optional string present, then flags 0.
    expect(daemon.calls[1]?.payload).toEqual(Buffer.concat([word(1), xdrString('qemu:///system'), word(0)]));
    expect(daemon.calls[2]?.payload).toEqual(xdrString('vm one'));
    expect(daemon.calls[3]?.payload).toEqual(
      Buffer.concat([domainStruct, xdrString('<domainsnapshot/>'), word(4 | 16 | 128)]),
    );
    expect(daemon.pongs()).toBe(1);
  });

  it('starts block jobs at a speed limit when given one (MiB/s, an unsigned hyper)', async () => {
    const daemon = await fakeDaemon(
      admitting((call) =>
        call.proc === 290 || call.proc === 266
          ? message(remote, call.proc, 1, call.serial, 0, Buffer.alloc(0))
          : undefined,
      ),
    );
    const connection = await LibvirtConnection.open(daemon.socket, 'qemu:///system', 5000);
    const domain = { name: 'vm one', uuid, id: 7 };
    await connection.blockCommit(domain, 'vda', '/b', 4, 1);
    await connection.blockPull(domain, 'vda', '/b', 1);
    connection.close();
    const prefix = Buffer.concat([domainStruct, xdrString('vda'), word(1), xdrString('/b')]);
    expect(daemon.calls.find((c) => c.proc === 290)?.payload).toEqual(
      Buffer.concat([prefix, word(0), word(0), word(1), word(4)]),
    );
    expect(daemon.calls.find((c) => c.proc === 266)?.payload).toEqual(
      Buffer.concat([prefix, word(0), word(1), word(0)]),
    );
  });

  it("rejects with libvirt's error code and message", async () => {
    const daemon = await fakeDaemon(
      admitting((call) =>
        call.proc === 185
          ? message(
              remote,
              185,
              1,
              call.serial,
              1,
              errorPayload(55, 'Requested operation is not valid: nope'),
            )
          : undefined,
      ),
    );
    const connection = await LibvirtConnection.open(daemon.socket, 'qemu:///system', 5000);
    const attempt = connection.createSnapshot({ name: 'vm one', uuid, id: 7 }, '<x/>', 0, 5000);
    await expect(attempt).rejects.toBeInstanceOf(LibvirtError);
    await expect(attempt).rejects.toMatchObject({
      code: 55,
      message: 'Requested operation is not valid: nope',
    });
    connection.close();
  });

  it('refuses a daemon that asks this user to authenticate, before opening anything', async () => {
    const daemon = await fakeDaemon(admitting(undefined, 2));
    await expect(LibvirtConnection.open(daemon.socket, 'qemu:///system', 5000)).rejects.toThrow(
      /asks this user to authenticate/,
    );
    expect(daemon.calls.map((c) => c.proc)).toEqual([66]);
  });

  it('gives up on a call without answer after its timeout, and on a message outside the protocol', async () => {
    const silent = await fakeDaemon(admitting());
    const connection = await LibvirtConnection.open(silent.socket, 'qemu:///system', 5000);
    await expect(
      connection.createSnapshot({ name: 'vm one', uuid, id: 7 }, '<x/>', 0, 100),
    ).rejects.toBeInstanceOf(LibvirtTimeoutError);
    // The connection is closed: a later call fails at once.
    await expect(connection.lookupDomain('vm one')).rejects.toBeInstanceOf(LibvirtConnectionError);

    const bad = await fakeDaemon((call) =>
      call.proc === 66 ? Buffer.concat([word(3), Buffer.alloc(28)]) : undefined,
    );
    await expect(LibvirtConnection.open(bad.socket, 'qemu:///system', 5000)).rejects.toThrow(
      /message of 3 bytes, outside its protocol/,
    );
  });

  it('refuses a list longer than the message that holds it', async () => {
    const daemon = await fakeDaemon(
      admitting((call) =>
        call.proc === 273
          ? message(remote, 273, 1, call.serial, 0, Buffer.concat([word(1_000_000), domainStruct, word(1)]))
          : undefined,
      ),
    );
    const connection = await LibvirtConnection.open(daemon.socket, 'qemu:///system', 5000);
    await expect(connection.listAllDomains(0)).rejects.toThrow(
      /^libvirt sent a list of 1000000 items in a shorter message$/,
    );
    connection.close();
  });

  it('hands the connection opened at start-up over once, for the same socket and URI only', async () => {
    const daemon = await fakeDaemon(admitting());
    expect(openLibvirtEarly('qemu:///session', 5000)).toBe(false);
    expect(openLibvirtEarly('qemu:///system', 5000, daemon.socket)).toBe(true);
    const adopted = await adoptEarlyConnection(daemon.socket, 'qemu:///system', 5000);
    expect(await adopted?.lookupDomain('vm one')).toEqual({ name: 'vm one', uuid, id: 7 });
    expect(adoptEarlyConnection(daemon.socket, 'qemu:///system', 5000)).toBeUndefined();
    adopted?.close();
    // Opened for another URI (the config file named another): not handed over.
    openLibvirtEarly('qemu:///system', 5000, daemon.socket);
    expect(adoptEarlyConnection(daemon.socket, 'qemu+unix:///system', 5000)).toBeUndefined();
    // It was opened all the same (then closed): a second connection listed the methods and opened.
    await vi.waitFor(() => {
      expect(daemon.calls.map((c) => c.proc)).toEqual([66, 1, 23, 66, 1]);
    });
    // One that could not be opened: a promise of nothing, and the caller does without.
    openLibvirtEarly('qemu:///system', 5000, path.join(os.tmpdir(), `ub-rpc-none-${process.pid}`));
    expect(
      await adoptEarlyConnection(
        path.join(os.tmpdir(), `ub-rpc-none-${process.pid}`),
        'qemu:///system',
        5000,
      ),
    ).toBeUndefined();
  });

  it('fails when nothing listens on the socket', async () => {
    await expect(
      LibvirtConnection.open(path.join(os.tmpdir(), `ub-rpc-none-${process.pid}`), 'qemu:///system', 1000),
    ).rejects.toThrow();
  });
});

describe("Virsh's prepared snapshots on libvirt's connection", () => {
  /** A virsh that records what it runs, taking snapshots on `socket`. */
  function virshOn(socket: string) {
    const commands: string[] = [];
    const runner = (request: ProgramRequest): Promise<ProgramResult> => {
      commands.push(request.argv[4] ?? '');
      return Promise.resolve({ argv: request.argv, exitCode: 0, stdout: '', stderr: '' });
    };
    return { virsh: new Virsh(runner, 'qemu:///system', undefined, undefined, { path: socket }), commands };
  }

  it('a quiesced one that fails is reported as virsh reports it, and the guest is thawed', async () => {
    const daemon = await fakeDaemon(
      admitting((call) =>
        call.proc === 185
          ? message(remote, 185, 1, call.serial, 1, errorPayload(86, 'Guest agent is not responding: gone'))
          : undefined,
      ),
    );
    const { virsh, commands } = virshOn(daemon.socket);
    virsh.prepareSnapshot('vm one', { quiesce: true, memory: false });
    await expect(
      virsh.snapshotCreate('vm one', '<domainsnapshot/>', { quiesce: true, memory: false }),
    ).rejects.toThrow(/^snapshot of domain 'vm one' failed: error: Guest agent is not responding: gone$/);
    expect(commands).toEqual(['domfsthaw']);
    // The call carried the quiesce flag with the others: no metadata, atomic, disk only.
    expect(daemon.calls.at(-1)?.payload.subarray(-4)).toEqual(word(4 | 16 | 64 | 128));
  });

  it('runs virsh when the connection cannot be made, or the domain is not found on it', async () => {
    const { virsh, commands } = virshOn(path.join(os.tmpdir(), `ub-rpc-none-${process.pid}`));
    virsh.prepareSnapshot('vm', { quiesce: false, memory: false });
    await virsh.snapshotCreate('vm', '<domainsnapshot/>', { quiesce: false, memory: false });
    expect(commands).toEqual(['snapshot-create']);

    const daemon = await fakeDaemon((call) =>
      call.proc === 23
        ? message(
            remote,
            23,
            1,
            call.serial,
            1,
            errorPayload(42, "Domain not found: no domain with matching name 'vm'"),
          )
        : admitting()(call),
    );
    const other = virshOn(daemon.socket);
    await other.virsh.blockJobPivot('vm', 'vda');
    expect(other.commands).toEqual(['blockjob']);
    expect(daemon.calls.map((c) => c.proc)).toEqual([66, 1, 23]);
  });

  it("starts an active commit and pivots on the connection; a pivot refused as not ready reads as virsh's", async () => {
    let pivots = 0;
    const daemon = await fakeDaemon(
      admitting((call) => {
        if (call.proc === 290 || call.proc === 266)
          return message(remote, call.proc, 1, call.serial, 0, Buffer.alloc(0));
        // remote_domain_get_block_job_info_ret: vda's active commit is ready (cur = end), vdb has no job.
        if (call.proc === 238)
          return message(
            remote,
            238,
            1,
            call.serial,
            0,
            call.payload.includes(xdrString('vda'))
              ? Buffer.concat([word(1), word(4), word(0), word(0), word(0), word(1), word(0), word(1)])
              : Buffer.alloc(32),
          );
        if (call.proc !== 237) return undefined;
        pivots++;
        return pivots === 1
          ? message(
              remote,
              237,
              1,
              call.serial,
              1,
              errorPayload(55, "block copy still active: disk 'vda' not ready for pivot yet"),
            )
          : message(remote, 237, 1, call.serial, 0, Buffer.alloc(0));
      }),
    );
    const { virsh, commands } = virshOn(daemon.socket);
    await expect(virsh.blockJobPivot('vm one', 'vda')).rejects.toThrow(
      /^pivot of disk vda of domain 'vm one' failed: error: block copy still active: disk 'vda' not ready for pivot yet$/,
    );
    await virsh.blockJobPivot('vm one', 'vda');
    expect(commands).toEqual([]);
    // The commit's progress is asked on the connection too: it answers that the job is ready.
    await virsh.blockCommit('vm one', 'vda', '/images/base.qcow2', () => undefined);
    const call = daemon.calls.find((c) => c.proc === 290);
    // remote_domain_block_commit_args: domain, disk, base (present), top (absent), bandwidth 0, flags ACTIVE.
    expect(call?.payload).toEqual(
      Buffer.concat([
        domainStruct,
        xdrString('vda'),
        word(1),
        xdrString('/images/base.qcow2'),
        word(0),
        word(0),
        word(0),
        word(4),
      ]),
    );
    // A pull (virDomainBlockRebase onto the base, no flags): the connection finds no job left afterwards.
    await virsh.blockPull('vm one', 'vdb', '/images/base b.qcow2', () => undefined);
    expect(commands).toEqual([]);
    // remote_domain_get_block_job_info_args: domain, disk, flags.
    expect(daemon.calls.find((c) => c.proc === 238)?.payload).toEqual(
      Buffer.concat([domainStruct, xdrString('vda'), word(0)]),
    );
    expect(daemon.calls.find((c) => c.proc === 266)?.payload).toEqual(
      Buffer.concat([
        domainStruct,
        xdrString('vdb'),
        word(1),
        xdrString('/images/base b.qcow2'),
        word(0),
        word(0),
        word(0),
      ]),
    );
    expect(daemon.calls.filter((c) => c.proc === 237).at(-1)?.payload).toEqual(
      Buffer.concat([domainStruct, xdrString('vda'), word(2)]),
    );
  });
});

describe("Virsh's read-only questions on libvirt's connection", () => {
  const ok = (call: { proc: number; serial: number }, payload: Buffer) =>
    message(remote, call.proc, 1, call.serial, 0, payload);
  const domain = (name: string, id: number, last: number) =>
    Buffer.concat([xdrString(name), Buffer.concat([uuid.subarray(0, 15), Buffer.from([last])]), word(id)]);
  /** remote_connect_list_all_domains_ret for `flags`: the domains, then their count again. */
  const lists = new Map<number, Buffer[]>([
    [0, [domain('b-off', -1, 1), domain('vm one', 7, 0xff), domain('A-off', -1, 2), domain('run3', 3, 3)]],
    [4, [domain('b-off', -1, 1), domain('vm one', 7, 0xff), domain('A-off', -1, 2), domain('run3', 3, 3)]],
    [8, []],
    [256, [domain('A-off', -1, 2)]],
    [512, [domain('b-off', -1, 1), domain('vm one', 7, 0xff), domain('run3', 3, 3)]],
    [64, [domain('b-off', -1, 1), domain('A-off', -1, 2)]],
    [4096, [domain('run3', 3, 3)]],
  ]);
  const xml = (name: string, flags: number) =>
    `<domain type='qemu'><name>${name}</name><!-- flags ${flags} --><devices>` +
    `<disk type='file' device='disk'><source file='/i/${name}.qcow2'/><target dev='vda'/></disk>` +
    `</devices></domain>\n`;

  function daemonAnswers(call: { proc: number; serial: number; payload: Buffer }): Buffer | undefined {
    const name = call.payload.subarray(4, 4 + call.payload.readUInt32BE(0)).toString();
    const flags = call.payload.readUInt32BE(call.payload.length - 4);
    switch (call.proc) {
      case 273: {
        const listed = lists.get(flags) ?? [];
        return ok(call, Buffer.concat([word(listed.length), ...listed, word(listed.length)]));
      }
      case 212: // remote_domain_get_state_ret: state, reason
        return ok(call, Buffer.concat([word(name === 'vm one' || name === 'run3' ? 1 : 5), word(1)]));
      case 14:
        return ok(call, xdrString(xml(name, flags)));
      case 151:
        return ok(call, word(1));
      case 183:
        return ok(call, word(name === 'A-off' ? 1 : 0));
      case 238: // 5 GiB of 6 GiB pulled: unsigned hyper words, high then low.
        return ok(
          call,
          name === 'vm one'
            ? Buffer.concat([
                word(1),
                word(1),
                word(0),
                word(0),
                word(1),
                word(1 << 30),
                word(1),
                word(1 << 31),
              ])
            : Buffer.alloc(32),
        );
      default:
        return undefined;
    }
  }

  function virshOn(socket: string) {
    const commands: string[] = [];
    const runner = (request: ProgramRequest): Promise<ProgramResult> => {
      commands.push(request.argv.slice(4).join(' '));
      return Promise.resolve({
        argv: request.argv,
        exitCode: 0,
        stdout: '<domain>from virsh</domain>\n',
        stderr: '',
      });
    };
    return { virsh: new Virsh(runner, 'qemu:///system', undefined, undefined, { path: socket }), commands };
  }

  it('answers as virsh would: info, definitions, lists in virsh order, block jobs; no virsh run', async () => {
    const daemon = await fakeDaemon(admitting(daemonAnswers));
    const { virsh, commands } = virshOn(daemon.socket);
    const vmUuid = '00112233-4455-6677-8899-aabbccddeeff';
    expect(await virsh.info('vm one')).toEqual({
      name: 'vm one',
      uuid: vmUuid,
      runState: 'running',
      persistent: true,
      managedSave: false,
    });
    expect(await virsh.dumpXml('vm one', 'inactive')).toBe(xml('vm one', 2));
    expect(await virsh.dumpXml('vm one', 'migratable')).toBe(xml('vm one', 8));
    // Running domains by ID, then the others by name, case aside.
    expect(await virsh.listDomains()).toEqual(['run3', 'vm one', 'A-off', 'b-off']);
    expect((await virsh.listUuids())[1]).toBe(vmUuid);
    expect(await virsh.domainsWithSnapshots()).toEqual(['run3']);
    expect(await virsh.blockJobInfo('vm one', 'vda')).toEqual({
      type: 'Block Pull',
      cur: 5 * 2 ** 30,
      end: 6 * 2 ** 30,
      ready: false,
    });
    const all = await virsh.readAll({ blockJobs: true });
    expect(all.map((d) => d.name)).toEqual(['run3', 'vm one', 'A-off', 'b-off']);
    const [, running, saved] = all.map((d) => d.definitions);
    expect(running).toEqual({
      info: { name: 'vm one', uuid: vmUuid, runState: 'running', persistent: true, managedSave: false },
      live: xml('vm one', 0),
      inactive: xml('vm one', 2),
      blockJobs: new Map([['vda', { type: 'Block Pull', cur: 5 * 2 ** 30, end: 6 * 2 ** 30, ready: false }]]),
    });
    // Listed shut off: its one definition is its persistent one, read once.
    expect(saved).toEqual({
      info: {
        name: 'A-off',
        uuid: expect.stringMatching(/-aabbccddee02$/) as string,
        runState: 'shut off',
        persistent: true,
        managedSave: true,
      },
      live: xml('A-off', 0),
      inactive: xml('A-off', 0),
    });
    expect(await virsh.readPlain('vm one', ['live', 'inactive'])).toEqual({
      info: await virsh.info('vm one'),
      xml: new Map([
        ['live', xml('vm one', 0)],
        ['inactive', xml('vm one', 2)],
      ]),
    });
    expect(commands).toEqual([]);
    // remote_connect_list_all_domains_args: need_results 1, flags; remote_domain_get_xml_desc_args: domain, flags.
    expect(daemon.calls.find((c) => c.proc === 273)?.payload).toEqual(Buffer.concat([word(1), word(0)]));
    expect(daemon.calls.find((c) => c.proc === 14)?.payload).toEqual(Buffer.concat([domainStruct, word(2)]));
  });

  it('asks virsh when libvirt answers with an error, and reports a timeout as virsh would', async () => {
    const daemon = await fakeDaemon(
      admitting((call) =>
        call.proc === 14
          ? message(remote, 14, 1, call.serial, 1, errorPayload(1, 'internal error: odd'))
          : undefined,
      ),
    );
    const { virsh, commands } = virshOn(daemon.socket);
    expect(await virsh.dumpXml('vm one')).toBe('<domain>from virsh</domain>\n');
    expect(commands).toEqual(['dumpxml --domain vm one']);

    const silent = await fakeDaemon(admitting());
    const slow = new Virsh(
      () => Promise.reject(new Error('virsh must not run')),
      'qemu:///system',
      { virshMs: 200, guestAgentMs: 1000, blockJobStallMs: 1000 },
      undefined,
      { path: silent.socket },
    );
    await expect(slow.info('vm one')).rejects.toThrow(
      /^domain 'vm one': libvirt did not answer within 0.2 s, so the tool gave up on it \(libvirtd busy or hung\?\)\. .*raise timeouts\.virsh/,
    );
  });
});
